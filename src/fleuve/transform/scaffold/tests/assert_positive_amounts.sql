-- The seed's quality check: every order in the marts has a positive amount.
SELECT *
FROM {{ ref('int_customer_orders') }}
WHERE amount <= 0
