-- gold.orders, the short name queries, reflections and dashboards use for the order fact.
{{ config(materialized='view') }}

SELECT * FROM {{ ref('fct_orders') }}
