-- Clean and standardize web events dropped as CSV files.
-- Incremental: events only ever arrive (each new drop is appended to bronze), so a run merges
-- the events landed since the last one.
{{ config(
    materialized='incremental',
    incremental_strategy='merge',
    unique_key='event_id',
    on_schema_change='sync_all_columns'
) }}

SELECT
    event_id,
    session_id,
    customer_id,
    LOWER(event_type) AS event_type,
    page_url,
    product_id,
    CAST(occurred_at AS TIMESTAMP) AS occurred_at,
    LOWER(device) AS device,
    UPPER(country_code) AS country_code,
    _fleuve_extracted_at
FROM {{ source('bronze', 'raw_web_events') }}
WHERE event_id IS NOT NULL
  AND {{ landed_since_last_run() }}
