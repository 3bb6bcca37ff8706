-- gold.customers, the short name queries use for the customer dimension.
{{ config(materialized='view') }}

SELECT * FROM {{ ref('dim_customers') }}
