-- Revenue per day from completed and shipped orders, for the daily revenue dashboard.
-- Incremental: days with orders landed since the last run are recomputed and merged; a day left
-- without revenue orders is removed by the post-hook, as a full rebuild would leave it out.
{{ config(
    materialized='incremental',
    incremental_strategy='merge',
    unique_key='order_date',
    on_schema_change='sync_all_columns',
    partitioned_by=['year(order_date)'],
    post_hook="DELETE FROM {{ this }} WHERE orders = 0"
) }}

WITH orders AS (
    SELECT * FROM {{ ref('stg_orders') }}
    {% if is_incremental() %}
    WHERE order_day IN (
        SELECT order_day FROM {{ ref('stg_orders') }} WHERE {{ landed_since_last_run() }}
    )
    {% endif %}
),

daily AS (
    SELECT
        order_day AS order_date,
        count(*) FILTER (WHERE status IN ('completed', 'shipped')) AS orders,
        coalesce(sum(amount) FILTER (WHERE status IN ('completed', 'shipped')), 0) AS amount,
        CAST(
            avg(amount) FILTER (WHERE status IN ('completed', 'shipped')) AS DECIMAL(12, 2)
        ) AS average_order_value,
        max(_fleuve_extracted_at) AS _fleuve_extracted_at
    FROM orders
    GROUP BY order_day
)

SELECT * FROM daily
{% if not is_incremental() %}
WHERE orders > 0
{% endif %}
