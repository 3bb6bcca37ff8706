-- Clean and standardize order lines.
SELECT
    order_line_id,
    order_id,
    product_id,
    quantity,
    CAST(unit_price AS DECIMAL(10, 2)) AS unit_price,
    CAST(line_amount AS DECIMAL(12, 2)) AS line_amount
FROM {{ source('bronze', 'raw_order_lines') }}
WHERE order_line_id IS NOT NULL
