-- gold.customers, the name the seed's queries use for the customer dimension.
{{ config(materialized='view') }}

SELECT * FROM {{ ref('dim_customers') }}
