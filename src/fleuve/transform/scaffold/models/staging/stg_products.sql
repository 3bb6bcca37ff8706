-- Clean and standardize the product catalog read from the catalog API.
SELECT
    product_id,
    sku,
    TRIM(name) AS product_name,
    category,
    CAST(unit_price AS DECIMAL(10, 2)) AS unit_price,
    currency,
    CAST(updated_at AS TIMESTAMP) AS updated_at
FROM {{ source('bronze', 'raw_products') }}
WHERE product_id IS NOT NULL
