-- Clean and standardize customers.
-- Incremental: only customers landed since the last run are merged in; a re-run without new
-- bronze rows changes nothing.
{{ config(
    materialized='incremental',
    incremental_strategy='merge',
    unique_key='customer_id',
    on_schema_change='sync_all_columns',
    merge_update_condition='DBT_INTERNAL_SOURCE.updated_at >= DBT_INTERNAL_DEST.updated_at'
) }}

WITH source AS (
    SELECT *
    FROM {{ source('bronze', 'raw_customers') }}
    WHERE customer_id IS NOT NULL
      AND {{ landed_since_last_run() }}
    -- Bronze may hold several versions of a customer (append syncs); keep the latest.
    QUALIFY row_number() OVER (
        PARTITION BY customer_id ORDER BY updated_at DESC, _fleuve_extracted_at DESC
    ) = 1
),

cleaned AS (
    SELECT
        customer_id,
        -- NFC so that a name typed with combining accents equals its precomposed spelling.
        TRIM(UPPER(nfc_normalize(full_name))) AS customer_name,
        TRIM(nfc_normalize(first_name)) AS first_name,
        TRIM(nfc_normalize(last_name)) AS last_name,
        LOWER(TRIM(email)) AS email,
        phone,
        address,
        city,
        region AS state,
        postal_code AS zip_code,
        UPPER(country_code) AS country_code,
        locale,
        created_at,
        updated_at,
        _fleuve_extracted_at
    FROM source
)

SELECT * FROM cleaned
