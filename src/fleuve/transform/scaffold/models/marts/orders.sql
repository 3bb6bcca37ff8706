-- gold.orders, the name the seed's queries and reflections use for the order fact.
{{ config(materialized='view') }}

SELECT * FROM {{ ref('fct_orders') }}
