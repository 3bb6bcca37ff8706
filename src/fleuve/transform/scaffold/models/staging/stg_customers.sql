-- Clean and standardize customers (the seed's stg_customers).
WITH source AS (
    SELECT * FROM {{ source('bronze', 'raw_customers') }}
),

cleaned AS (
    SELECT
        customer_id,
        TRIM(UPPER(full_name)) AS customer_name,
        LOWER(email) AS email,
        phone,
        address,
        city,
        region AS state,
        postal_code AS zip_code,
        country_code,
        locale,
        created_at,
        updated_at
    FROM source
    WHERE customer_id IS NOT NULL
)

SELECT * FROM cleaned
