-- Join customers and their orders.
-- Incremental: an order is re-derived when it or its customer landed since the last run.
{{ config(
    materialized='incremental',
    incremental_strategy='merge',
    unique_key='order_id',
    on_schema_change='sync_all_columns'
) }}

WITH customers AS (
    SELECT * FROM {{ ref('stg_customers') }}
),

orders AS (
    SELECT * FROM {{ ref('stg_orders') }}
),

joined AS (
    SELECT
        c.customer_id,
        c.customer_name,
        c.email,
        c.state,
        c.country_code,
        o.order_id,
        o.order_date,
        o.order_day,
        o.amount,
        o.currency,
        o.channel,
        o.status,
        greatest(c._fleuve_extracted_at, o._fleuve_extracted_at) AS _fleuve_extracted_at
    FROM customers c
    INNER JOIN orders o
        ON c.customer_id = o.customer_id
)

SELECT * FROM joined
WHERE {{ landed_since_last_run() }}
