-- Clean and standardize the product catalog read from the catalog API (timestamps arrive as text).
SELECT
    product_id,
    sku,
    TRIM(nfc_normalize(name)) AS product_name,
    TRIM(category) AS category,
    CAST(unit_price AS DECIMAL(10, 2)) AS unit_price,
    UPPER(currency) AS currency,
    CAST(created_at AS TIMESTAMP) AS created_at,
    CAST(updated_at AS TIMESTAMP) AS updated_at,
    _fleuve_extracted_at
FROM {{ source('bronze', 'raw_products') }}
WHERE product_id IS NOT NULL
