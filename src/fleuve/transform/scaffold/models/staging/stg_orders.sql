-- Clean and standardize orders: an incremental model, merged on order_id.
{{ config(
    materialized='incremental',
    incremental_strategy='merge',
    unique_key='order_id',
    on_schema_change='sync_all_columns',
    merge_update_condition='DBT_INTERNAL_SOURCE.updated_at >= DBT_INTERNAL_DEST.updated_at'
) }}

WITH source AS (
    SELECT *
    FROM {{ source('bronze', 'raw_orders') }}
    WHERE order_id IS NOT NULL
      AND {{ landed_since_last_run() }}
    -- Bronze may hold several versions of an order (append syncs); keep the latest.
    QUALIFY row_number() OVER (
        PARTITION BY order_id ORDER BY updated_at DESC, _fleuve_extracted_at DESC
    ) = 1
)

SELECT
    order_id,
    customer_id,
    order_date,
    CAST(order_date AS DATE) AS order_day,
    LOWER(TRIM(status)) AS status,
    CAST(amount AS DECIMAL(12, 2)) AS amount,
    UPPER(currency) AS currency,
    LOWER(channel) AS channel,
    updated_at,
    _fleuve_extracted_at
FROM source
