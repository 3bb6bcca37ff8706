-- Business metrics per customer over completed orders.
-- Incremental: customers with orders re-derived since the last run are recomputed and merged.
-- A customer left without completed orders comes out with total_orders = 0 and the post-hook
-- removes it, so the table always equals a full rebuild.
{{ config(
    materialized='incremental',
    incremental_strategy='merge',
    unique_key='customer_id',
    on_schema_change='sync_all_columns',
    partitioned_by=['year(first_order_date)'],
    post_hook="DELETE FROM {{ this }} WHERE total_orders = 0"
) }}

WITH customer_orders AS (
    SELECT * FROM {{ ref('int_customer_orders') }}
    {% if is_incremental() %}
    WHERE customer_id IN (
        SELECT customer_id FROM {{ ref('int_customer_orders') }} WHERE {{ landed_since_last_run() }}
    )
    {% endif %}
),

metrics AS (
    SELECT
        customer_id,
        customer_name,
        email,
        -- order_id is unique in int_customer_orders (tested), so count(*) counts orders.
        count(*) FILTER (WHERE status = 'completed') AS total_orders,
        coalesce(sum(amount) FILTER (WHERE status = 'completed'), 0) AS lifetime_value,
        CAST(avg(amount) FILTER (WHERE status = 'completed') AS DECIMAL(12, 2)) AS average_order_value,
        min(order_date) FILTER (WHERE status = 'completed') AS first_order_date,
        max(order_date) FILTER (WHERE status = 'completed') AS last_order_date,
        datediff(
            'day',
            min(order_date) FILTER (WHERE status = 'completed'),
            max(order_date) FILTER (WHERE status = 'completed')
        ) AS customer_lifespan_days,
        max(_fleuve_extracted_at) AS _fleuve_extracted_at
    FROM customer_orders
    GROUP BY customer_id, customer_name, email
)

SELECT * FROM metrics
{% if not is_incremental() %}
WHERE total_orders > 0
{% endif %}
