-- One row per order with its customer's country and its lines: the shop's large fact table.
-- Incremental: orders re-derived in int_customer_orders since the last run are merged in.
-- An order's lines change only together with the order, whose updated_at then moves.
-- Partitioned by year: a month of a million-order year is a few MB, too small a file to be
-- worth its own partition; a year of it is one well-sized file.
{{ config(
    materialized='incremental',
    incremental_strategy='merge',
    unique_key='order_id',
    on_schema_change='sync_all_columns',
    partitioned_by=['year(order_date)']
) }}

WITH orders AS (
    SELECT * FROM {{ ref('int_customer_orders') }}
    WHERE {{ landed_since_last_run() }}
),

lines AS (
    SELECT
        order_id,
        count(*) AS line_count,
        sum(quantity) AS items
    FROM {{ ref('stg_order_lines') }}
    {% if is_incremental() %}
    WHERE order_id IN (SELECT order_id FROM orders)
    {% endif %}
    GROUP BY order_id
)

SELECT
    o.order_id,
    o.customer_id,
    o.order_date,
    o.order_day,
    o.status,
    o.amount,
    o.currency,
    o.channel,
    o.country_code,
    o.state,
    coalesce(l.line_count, 0) AS line_count,
    coalesce(l.items, 0) AS items,
    o._fleuve_extracted_at
FROM orders o
LEFT JOIN lines l ON l.order_id = o.order_id
