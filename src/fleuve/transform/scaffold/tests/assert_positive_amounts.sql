-- A quality check: every order has a positive amount. It runs with the staging tests,
-- so a bad amount stops the pipeline before it reaches the intermediate and mart layers.
SELECT *
FROM {{ ref('stg_orders') }}
WHERE amount <= 0
