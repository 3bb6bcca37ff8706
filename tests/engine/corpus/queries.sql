-- The golden equivalence corpus: each query runs with and without reflections and must
-- return the same rows and types. `expect` names the reflection that must answer it
-- (the cheapest that can), or none when no reflection may.

-- expect: agg_month
SELECT status, SUM(amount) FROM gold.orders GROUP BY status;

-- expect: agg_month
SELECT status, COUNT(*) FROM gold.orders GROUP BY status;

-- expect: agg_month
SELECT status, COUNT(amount) FROM gold.orders GROUP BY status;

-- expect: agg_month
SELECT status, AVG(amount) FROM gold.orders GROUP BY status;

-- expect: agg_month
SELECT status, MIN(status) FROM gold.orders GROUP BY status;

-- expect: agg_month
SELECT status, MAX(status) FROM gold.orders GROUP BY status;

-- expect: agg_fine
SELECT status, SUM(quantity) FROM gold.orders GROUP BY status;

-- expect: agg_fine
SELECT status, MIN(amount) FROM gold.orders GROUP BY status;

-- expect: agg_fine
SELECT status, MAX(amount) FROM gold.orders GROUP BY status;

-- expect: agg_fine
SELECT status, AVG(quantity) FROM gold.orders GROUP BY status;

-- expect: agg_fine
SELECT status, COUNT(quantity) FROM gold.orders GROUP BY status;

-- expect: agg_fine
SELECT status, MIN(quantity) FROM gold.orders GROUP BY status;

-- expect: agg_fine
SELECT status, MAX(quantity) FROM gold.orders GROUP BY status;

-- expect: agg_fine
SELECT status, COUNT(DISTINCT customer_id) FROM gold.orders GROUP BY status;

-- expect: agg_fine
SELECT status, APPROX_COUNT_DISTINCT(order_id) FROM gold.orders GROUP BY status;

-- expect: agg_fine
SELECT status, COUNT(DISTINCT order_id) FROM gold.orders GROUP BY status;

-- expect: agg_fine
SELECT status, SUM(weight) FROM gold.orders GROUP BY status;

-- expect: agg_fine
SELECT status, AVG(weight) FROM gold.orders GROUP BY status;

-- expect: agg_fine
SELECT status, MAX(weight) FROM gold.orders GROUP BY status;

-- expect: agg_fine
SELECT country, SUM(quantity) FROM gold.orders GROUP BY country;

-- expect: agg_fine
SELECT country, MIN(amount) FROM gold.orders GROUP BY country;

-- expect: agg_fine
SELECT country, MAX(amount) FROM gold.orders GROUP BY country;

-- expect: agg_fine
SELECT country, AVG(quantity) FROM gold.orders GROUP BY country;

-- expect: agg_fine
SELECT country, COUNT(quantity) FROM gold.orders GROUP BY country;

-- expect: agg_fine
SELECT country, MIN(quantity) FROM gold.orders GROUP BY country;

-- expect: agg_fine
SELECT country, MAX(quantity) FROM gold.orders GROUP BY country;

-- expect: agg_fine
SELECT country, COUNT(DISTINCT customer_id) FROM gold.orders GROUP BY country;

-- expect: agg_fine
SELECT country, APPROX_COUNT_DISTINCT(order_id) FROM gold.orders GROUP BY country;

-- expect: agg_fine
SELECT country, COUNT(DISTINCT order_id) FROM gold.orders GROUP BY country;

-- expect: agg_fine
SELECT country, SUM(weight) FROM gold.orders GROUP BY country;

-- expect: agg_fine
SELECT country, AVG(weight) FROM gold.orders GROUP BY country;

-- expect: agg_fine
SELECT country, MAX(weight) FROM gold.orders GROUP BY country;

-- expect: agg_fine
SELECT customer_id, SUM(quantity) FROM gold.orders GROUP BY customer_id;

-- expect: agg_fine
SELECT customer_id, MIN(amount) FROM gold.orders GROUP BY customer_id;

-- expect: agg_fine
SELECT customer_id, MAX(amount) FROM gold.orders GROUP BY customer_id;

-- expect: agg_fine
SELECT customer_id, AVG(quantity) FROM gold.orders GROUP BY customer_id;

-- expect: agg_fine
SELECT customer_id, COUNT(quantity) FROM gold.orders GROUP BY customer_id;

-- expect: agg_fine
SELECT customer_id, MIN(quantity) FROM gold.orders GROUP BY customer_id;

-- expect: agg_fine
SELECT customer_id, MAX(quantity) FROM gold.orders GROUP BY customer_id;

-- expect: agg_fine
SELECT customer_id, COUNT(DISTINCT customer_id) FROM gold.orders GROUP BY customer_id;

-- expect: agg_fine
SELECT customer_id, APPROX_COUNT_DISTINCT(order_id) FROM gold.orders GROUP BY customer_id;

-- expect: agg_fine
SELECT customer_id, COUNT(DISTINCT order_id) FROM gold.orders GROUP BY customer_id;

-- expect: agg_fine
SELECT customer_id, SUM(weight) FROM gold.orders GROUP BY customer_id;

-- expect: agg_fine
SELECT customer_id, AVG(weight) FROM gold.orders GROUP BY customer_id;

-- expect: agg_fine
SELECT customer_id, MAX(weight) FROM gold.orders GROUP BY customer_id;

-- expect: agg_fine
SELECT country, SUM(amount) FROM gold.orders GROUP BY country;

-- expect: agg_fine
SELECT country, COUNT(*) FROM gold.orders GROUP BY country;

-- expect: agg_fine
SELECT country, AVG(amount) FROM gold.orders GROUP BY country;

-- expect: agg_fine
SELECT customer_id, SUM(amount) FROM gold.orders GROUP BY customer_id;

-- expect: agg_fine
SELECT customer_id, COUNT(*) FROM gold.orders GROUP BY customer_id;

-- expect: agg_fine
SELECT customer_id, AVG(amount) FROM gold.orders GROUP BY customer_id;

-- expect: agg_fine
SELECT status, country, SUM(amount), COUNT(*) FROM gold.orders GROUP BY status, country;

-- expect: agg_fine
SELECT country, status, customer_id, SUM(amount) AS s FROM gold.orders GROUP BY ALL;

-- expect: agg_month
SELECT date_trunc('month', ordered_at) AS t, SUM(amount) FROM gold.orders GROUP BY 1;

-- expect: agg_month
SELECT status, date_trunc('month', ordered_at) AS t, COUNT(*) FROM gold.orders GROUP BY 1, 2;

-- expect: agg_month
SELECT date_trunc('quarter', ordered_at) AS t, SUM(amount) FROM gold.orders GROUP BY 1;

-- expect: agg_month
SELECT status, date_trunc('quarter', ordered_at) AS t, COUNT(*) FROM gold.orders GROUP BY 1, 2;

-- expect: agg_month
SELECT date_trunc('year', ordered_at) AS t, SUM(amount) FROM gold.orders GROUP BY 1;

-- expect: agg_month
SELECT status, date_trunc('year', ordered_at) AS t, COUNT(*) FROM gold.orders GROUP BY 1, 2;

-- expect: agg_fine
SELECT date_trunc('day', ordered_at) AS t, SUM(amount), COUNT(*) FROM gold.orders GROUP BY 1;

-- expect: agg_fine
SELECT date_trunc('week', ordered_at) AS t, SUM(amount), COUNT(*) FROM gold.orders GROUP BY 1;

-- expect: agg_fine
SELECT CAST(ordered_at AS DATE) AS d, SUM(quantity) FROM gold.orders GROUP BY 1;

-- expect: agg_fine
SELECT ordered_at::DATE AS d, country, COUNT(*) FROM gold.orders GROUP BY 1, 2;

-- expect: agg_month
SELECT year(ordered_at) AS y, month(ordered_at) AS m, SUM(amount) FROM gold.orders GROUP BY 1, 2;

-- expect: agg_month
SELECT EXTRACT(year FROM ordered_at) AS y, COUNT(*) FROM gold.orders GROUP BY 1;

-- expect: agg_month
SELECT quarter(ordered_at) AS qt, status, AVG(amount) FROM gold.orders GROUP BY 1, 2;

-- expect: agg_fine
SELECT dayofweek(ordered_at) AS dow, COUNT(*) FROM gold.orders GROUP BY 1;

-- expect: agg_fine
SELECT day(ordered_at) AS dd, SUM(amount) FROM gold.orders GROUP BY 1;

-- expect: agg_fine
SELECT dayofyear(ordered_at) AS doy, MAX(amount) FROM gold.orders GROUP BY 1;

-- expect: agg_fine
SELECT EXTRACT(day FROM ordered_at) AS dd, MIN(quantity) FROM gold.orders GROUP BY 1;

-- expect: agg_month
SELECT date_trunc('month', ordered_at) AS m, status, SUM(amount) FROM gold.orders GROUP BY ALL ORDER BY m, status;

-- expect: agg_fine
SELECT date_trunc('day', ordered_at) AS d FROM gold.orders GROUP BY 1 ORDER BY 1 LIMIT 20;

-- expect: agg_month
SELECT status, SUM(amount), COUNT(*) FROM gold.orders WHERE status = 'paid' GROUP BY status;

-- expect: agg_month
SELECT status, SUM(amount), COUNT(*) FROM gold.orders WHERE status <> 'paid' GROUP BY status;

-- expect: agg_month
SELECT status, SUM(amount), COUNT(*) FROM gold.orders WHERE status IN ('paid', 'new') GROUP BY status;

-- expect: agg_month
SELECT status, SUM(amount), COUNT(*) FROM gold.orders WHERE status NOT IN ('paid', 'new') GROUP BY status;

-- expect: agg_month
SELECT status, SUM(amount), COUNT(*) FROM gold.orders WHERE status IS NULL GROUP BY status;

-- expect: agg_month
SELECT status, SUM(amount), COUNT(*) FROM gold.orders WHERE status IS NOT NULL GROUP BY status;

-- expect: agg_month
SELECT status, SUM(amount), COUNT(*) FROM gold.orders WHERE status = 'paid' OR status IS NULL GROUP BY status;

-- expect: agg_month
SELECT status, SUM(amount), COUNT(*) FROM gold.orders WHERE status LIKE 'p%' GROUP BY status;

-- expect: agg_month
SELECT status, SUM(amount), COUNT(*) FROM gold.orders WHERE status BETWEEN 'a' AND 'p' GROUP BY status;

-- expect: agg_month
SELECT status, SUM(amount), COUNT(*) FROM gold.orders WHERE date_trunc('month', ordered_at) >= TIMESTAMP '2024-06-01' GROUP BY status;

-- expect: agg_month
SELECT status, SUM(amount), COUNT(*) FROM gold.orders WHERE date_trunc('year', ordered_at) = TIMESTAMP '2024-01-01' GROUP BY status;

-- expect: agg_month
SELECT status, SUM(amount), COUNT(*) FROM gold.orders WHERE ordered_at IS NULL GROUP BY status;

-- expect: agg_month
SELECT status, SUM(amount), COUNT(*) FROM gold.orders WHERE date_trunc('month', ordered_at) BETWEEN TIMESTAMP '2024-03-01' AND TIMESTAMP '2024-05-01' GROUP BY status;

-- expect: agg_month
SELECT status, SUM(amount), COUNT(*) FROM gold.orders WHERE coalesce(status, 'none') <> 'cancelled' GROUP BY status;

-- expect: agg_month
SELECT status, SUM(amount), COUNT(*) FROM gold.orders WHERE upper(status) IN ('NEW', 'SHIPPED') GROUP BY status;

-- expect: agg_month
SELECT status, SUM(amount), COUNT(*) FROM gold.orders WHERE NOT (status = 'new' AND date_trunc('quarter', ordered_at) = TIMESTAMP '2024-04-01') GROUP BY status;

-- expect: agg_month
SELECT status, SUM(amount), COUNT(*) FROM gold.orders WHERE month(ordered_at) IN (1, 2, 12) GROUP BY status;

-- expect: agg_fine
SELECT country, SUM(amount), COUNT(*), MAX(quantity) FROM gold.orders WHERE country = 'FR' GROUP BY country;

-- expect: agg_fine
SELECT country, SUM(amount), COUNT(*), MAX(quantity) FROM gold.orders WHERE country IN ('FR', 'DE') AND status = 'paid' GROUP BY country;

-- expect: agg_fine
SELECT country, SUM(amount), COUNT(*), MAX(quantity) FROM gold.orders WHERE customer_id BETWEEN 5 AND 15 GROUP BY country;

-- expect: agg_fine
SELECT country, SUM(amount), COUNT(*), MAX(quantity) FROM gold.orders WHERE customer_id IS NULL OR country IS NULL GROUP BY country;

-- expect: agg_fine
SELECT country, SUM(amount), COUNT(*), MAX(quantity) FROM gold.orders WHERE customer_id % 2 = 0 GROUP BY country;

-- expect: agg_fine
SELECT country, SUM(amount), COUNT(*), MAX(quantity) FROM gold.orders WHERE country <> 'JP' OR customer_id < 3 GROUP BY country;

-- expect: agg_fine
SELECT country, SUM(amount), COUNT(*), MAX(quantity) FROM gold.orders WHERE CAST(ordered_at AS DATE) >= DATE '2024-07-01' GROUP BY country;

-- expect: agg_fine
SELECT country, SUM(amount), COUNT(*), MAX(quantity) FROM gold.orders WHERE date_trunc('day', ordered_at) < TIMESTAMP '2024-02-15' GROUP BY country;

-- expect: agg_fine
SELECT country, SUM(amount), COUNT(*), MAX(quantity) FROM gold.orders WHERE date_trunc('week', ordered_at) = TIMESTAMP '2024-03-04' GROUP BY country;

-- expect: agg_fine
SELECT country, SUM(amount), COUNT(*), MAX(quantity) FROM gold.orders WHERE customer_id IN (1, 2, 3, NULL) GROUP BY country;

-- expect: agg_fine
SELECT country, SUM(amount), COUNT(*), MAX(quantity) FROM gold.orders WHERE customer_id NOT IN (1, 2, 3) GROUP BY country;

-- expect: agg_fine
SELECT country, SUM(amount), COUNT(*), MAX(quantity) FROM gold.orders WHERE country LIKE '%A' GROUP BY country;

-- expect: agg_fine
SELECT country, SUM(amount), COUNT(*), MAX(quantity) FROM gold.orders WHERE status = 'new' AND country IS NOT NULL GROUP BY country;

-- expect: agg_fine
SELECT country, SUM(amount), COUNT(*), MAX(quantity) FROM gold.orders WHERE ordered_at::DATE = DATE '2024-05-05' GROUP BY country;

-- expect: agg_fine
SELECT customer_id, SUM(amount) FROM gold.orders WHERE country = 'MA' GROUP BY customer_id;

-- expect: agg_fine
SELECT SUM(amount) FROM gold.orders WHERE customer_id = 7 AND status = 'paid';

-- expect: agg_month
SELECT status, SUM(amount) AS s FROM gold.orders GROUP BY status HAVING SUM(amount) > 10000;

-- expect: agg_month
SELECT status, COUNT(*) AS n FROM gold.orders GROUP BY status HAVING n > 100 ORDER BY n DESC;

-- expect: agg_fine
SELECT customer_id, SUM(amount) AS ltv FROM gold.orders GROUP BY customer_id ORDER BY ltv DESC NULLS LAST, customer_id LIMIT 10;

-- expect: agg_fine
SELECT customer_id, SUM(amount) AS ltv FROM gold.orders GROUP BY customer_id ORDER BY ltv DESC NULLS LAST, customer_id LIMIT 5 OFFSET 3;

-- expect: agg_fine
SELECT country, AVG(amount) AS a FROM gold.orders GROUP BY country HAVING AVG(amount) > 40 AND COUNT(*) > 10 ORDER BY a;

-- expect: agg_fine
SELECT country, MIN(amount) FROM gold.orders GROUP BY country HAVING MIN(amount) IS NOT NULL ORDER BY 2;

-- expect: agg_month
SELECT DISTINCT status FROM gold.orders;

-- expect: agg_fine
SELECT DISTINCT country, status FROM gold.orders WHERE customer_id > 30;

-- expect: agg_fine
SELECT DISTINCT date_trunc('month', ordered_at) AS m, country FROM gold.orders ORDER BY 1, 2 NULLS FIRST;

-- expect: agg_month
SELECT status AS s, COUNT(*) AS c FROM gold.orders GROUP BY s ORDER BY c DESC, s;

-- expect: agg_fine
SELECT country AS c, SUM(quantity) FROM gold.orders GROUP BY c ORDER BY c NULLS FIRST;

-- expect: agg_month
SELECT status FROM gold.orders GROUP BY status ORDER BY status NULLS LAST;

-- expect: agg_fine
SELECT customer_id FROM gold.orders WHERE country = 'CN' GROUP BY customer_id HAVING COUNT(*) >= 2;

-- expect: agg_fine
SELECT status, country, customer_id, date_trunc('day', ordered_at) AS d, SUM(amount) AS s, COUNT(*) AS n FROM gold.orders GROUP BY ALL ORDER BY s DESC NULLS LAST, n, d, customer_id, country, status LIMIT 25;

-- expect: agg_fine
SELECT status, country, customer_id, date_trunc('day', ordered_at), MIN(amount), MAX(quantity), AVG(amount) FROM gold.orders GROUP BY 1, 2, 3, 4 HAVING COUNT(*) > 0;

-- expect: agg_fine
SELECT status, country, customer_id, date_trunc('day', ordered_at) AS d, COUNT(amount) FROM gold.orders WHERE country = 'DE' GROUP BY status, country, customer_id, d;

-- expect: agg_month
SELECT status, COUNT(*) FROM gold.orders GROUP BY status ORDER BY COUNT(*) DESC, status LIMIT 2;

-- expect: agg_fine
SELECT country, SUM(amount) FROM gold.orders GROUP BY country ORDER BY SUM(amount) DESC NULLS LAST LIMIT 3;

-- expect: agg_month
SELECT SUM(amount) FROM gold.orders;

-- expect: agg_month
SELECT COUNT(*) FROM gold.orders;

-- expect: agg_month
SELECT COUNT(amount) FROM gold.orders;

-- expect: agg_month
SELECT AVG(amount) FROM gold.orders;

-- expect: agg_fine
SELECT MIN(amount) FROM gold.orders;

-- expect: agg_fine
SELECT MAX(quantity) FROM gold.orders;

-- expect: agg_month
SELECT COUNT(DISTINCT status) FROM gold.orders;

-- expect: agg_fine
SELECT APPROX_COUNT_DISTINCT(order_id) FROM gold.orders;

-- expect: agg_fine
SELECT COUNT(DISTINCT order_id) FROM gold.orders;

-- expect: agg_month
SELECT SUM(amount), COUNT(*), AVG(amount), COUNT(amount) FROM gold.orders WHERE status = 'does-not-exist';

-- expect: agg_fine
SELECT SUM(quantity), COUNT(*), MIN(amount), COUNT(DISTINCT customer_id), APPROX_COUNT_DISTINCT(order_id), COUNT(DISTINCT order_id) FROM gold.orders WHERE country = 'XX';

-- expect: agg_fine
SELECT COUNT(*) FROM gold.orders WHERE customer_id IS NULL;

-- expect: agg_month
SELECT COUNT(*) FROM gold.orders WHERE ordered_at IS NULL AND status IS NULL;

-- expect: agg_fine
SELECT MAX(amount) - MIN(amount) AS spread FROM gold.orders WHERE country = 'JP';

-- expect: agg_month
SELECT SUM(amount) FILTER (WHERE status = 'paid') AS paid, SUM(amount) AS total FROM gold.orders;

-- expect: agg_month
SELECT status, SUM(amount) / COUNT(*) AS per_order FROM gold.orders GROUP BY status;

-- expect: agg_month
SELECT coalesce(status, '?') AS s, COUNT(*) FROM gold.orders GROUP BY 1;

-- expect: agg_month
SELECT CASE WHEN status IN ('paid', 'shipped') THEN 'done' ELSE 'open' END AS state, SUM(amount) FROM gold.orders GROUP BY 1;

-- expect: agg_month
SELECT status, round(AVG(amount), 2) AS a FROM gold.orders GROUP BY status;

-- expect: agg_month
SELECT status, SUM(amount) * 1.2 AS with_tax, COUNT(*) + 1 AS n1 FROM gold.orders GROUP BY status;

-- expect: agg_fine
SELECT country, SUM(amount) / NULLIF(SUM(quantity), 0) AS unit FROM gold.orders GROUP BY country;

-- expect: agg_fine
SELECT lower(country) AS c, COUNT(*) FROM gold.orders GROUP BY lower(country);

-- expect: agg_fine
SELECT customer_id % 10 AS bucket, SUM(amount) FROM gold.orders GROUP BY customer_id % 10;

-- expect: agg_month
SELECT length(status) AS l, COUNT(*) FROM gold.orders GROUP BY 1;

-- expect: agg_fine
SELECT country, MAX(amount) >= 99 AS has_big FROM gold.orders GROUP BY country;

-- expect: agg_fine
SELECT concat(country, '-', status) AS k, SUM(quantity) FROM gold.orders GROUP BY 1;

-- expect: agg_month
SELECT status, COUNT(*) * 100.0 / SUM(COUNT(*)) OVER () AS share FROM gold.orders GROUP BY status;

-- expect: agg_fine
SELECT country, COALESCE(SUM(amount), 0) AS s FROM gold.orders GROUP BY country;

-- expect: agg_fine
SELECT customer_id, COUNT(*) FILTER (WHERE status = 'cancelled') AS cancelled, COUNT(*) AS n FROM gold.orders GROUP BY customer_id;

-- expect: agg_fine
SELECT country, SUM(amount) FILTER (WHERE customer_id < 20) AS s1, AVG(quantity) FILTER (WHERE status IS NOT NULL) AS a FROM gold.orders GROUP BY country;

-- expect: agg_fine
SELECT status, COUNT(country) AS with_country, COUNT(customer_id) FROM gold.orders GROUP BY status;

-- expect: agg_month
SELECT status, COUNT(ordered_at) FROM gold.orders GROUP BY status;

-- expect: agg_fine
SELECT country, MIN(customer_id), MAX(customer_id), MIN(date_trunc('day', ordered_at)) FROM gold.orders GROUP BY country;

-- expect: agg_month
WITH s AS (SELECT status, SUM(amount) AS total FROM gold.orders GROUP BY status) SELECT * FROM s WHERE total > 0;

-- expect: agg_fine
WITH c AS (SELECT customer_id, SUM(amount) AS ltv FROM gold.orders GROUP BY customer_id) SELECT c.customer_id, c.ltv, cu.name FROM c JOIN gold.customers cu USING (customer_id);

-- expect: agg_fine
SELECT * FROM (SELECT country, COUNT(*) AS n FROM gold.orders GROUP BY country) t WHERE n > 500;

-- expect: agg_month
SELECT MAX(total) FROM (SELECT status, SUM(amount) AS total FROM gold.orders GROUP BY status);

-- expect: agg_fine
SELECT name FROM gold.customers WHERE customer_id IN (SELECT customer_id FROM gold.orders GROUP BY customer_id HAVING SUM(amount) > 4000);

-- expect: agg_month
SELECT (SELECT COUNT(*) FROM gold.orders) AS n_orders, (SELECT COUNT(*) FROM gold.customers) AS n_customers;

-- expect: agg_month
SELECT status, SUM(amount) FROM gold.orders GROUP BY status UNION ALL SELECT 'all', SUM(amount) FROM gold.orders;

-- expect: agg_fine
SELECT country AS k, COUNT(*) FROM gold.orders GROUP BY country UNION ALL SELECT status, COUNT(*) FROM gold.orders GROUP BY status;

-- expect: agg_month
WITH a AS (SELECT status, COUNT(*) AS n FROM gold.orders GROUP BY status), b AS (SELECT status, SUM(amount) AS s FROM gold.orders GROUP BY status) SELECT a.status, n, s FROM a FULL JOIN b ON a.status IS NOT DISTINCT FROM b.status;

-- expect: agg_fine
SELECT c.segment, SUM(t.ltv) FROM (SELECT customer_id, SUM(amount) AS ltv FROM gold.orders GROUP BY customer_id) t LEFT JOIN gold.customers c ON c.customer_id = t.customer_id GROUP BY c.segment;

-- expect: agg_month
SELECT * FROM (SELECT date_trunc('month', ordered_at) AS m, SUM(amount) AS s FROM gold.orders GROUP BY 1) ORDER BY m NULLS FIRST LIMIT 4;

-- expect: agg_fine
WITH daily AS (SELECT date_trunc('day', ordered_at) AS d, SUM(amount) AS s FROM gold.orders GROUP BY 1) SELECT date_trunc('month', d) AS m, MAX(s) FROM daily GROUP BY 1;

-- expect: raw_orders
SELECT status FROM gold.orders GROUP BY status HAVING COUNT(*) > (SELECT COUNT(*) / 10 FROM gold.customers);

-- expect: agg_fine
SELECT country, n FROM (SELECT country, COUNT(*) AS n, rank() OVER (ORDER BY COUNT(*) DESC) AS r FROM gold.orders GROUP BY country) WHERE r <= 2;

-- expect: agg_lines
SELECT segment, SUM(amount) FROM "Shop".order_lines GROUP BY segment;

-- expect: agg_lines
SELECT segment, status, COUNT(*), AVG(amount) FROM "Shop".order_lines GROUP BY ALL;

-- expect: agg_lines
SELECT city, MIN(amount), MAX(amount) FROM "Shop".order_lines WHERE segment = 'vip' GROUP BY city;

-- expect: agg_lines
SELECT SUM(quantity) FROM "Shop".order_lines WHERE segment IS NULL;

-- expect: agg_lines
SELECT segment, city, status, SUM(amount), COUNT(quantity) FROM "Shop".order_lines GROUP BY 1, 2, 3;

-- expect: agg_lines
SELECT DISTINCT city FROM "Shop".order_lines;

-- expect: raw_lines
SELECT order_id, amount FROM "Shop".order_lines WHERE segment = 'pro' ORDER BY order_id LIMIT 50;

-- expect: raw_lines
SELECT segment, COUNT(DISTINCT order_id) FROM "Shop".order_lines GROUP BY segment;

-- expect: raw_lines
SELECT SUM(amount) FROM "Shop".order_lines WHERE order_id < 100;

-- expect: none
SELECT segment, SUM(amount) FROM "Shop".order_lines WHERE quantity > 3 GROUP BY segment;

-- expect: none
SELECT l.segment, c.name FROM "Shop".order_lines l JOIN gold.customers c USING (customer_id) WHERE l.order_id = 42;

-- expect: agg_fine
SELECT c.name, o.s FROM gold.customers c JOIN (SELECT customer_id, SUM(amount) AS s FROM gold.orders GROUP BY customer_id) o ON o.customer_id = c.customer_id ORDER BY c.name;

-- expect: raw_orders
SELECT o.order_id, o.amount, c.name FROM gold.orders o JOIN gold.customers c ON o.order_id = c.customer_id;

-- expect: none
SELECT o.order_id, c.name FROM gold.orders o JOIN gold.customers c ON o.customer_id = c.customer_id WHERE o.order_id < 20;

-- expect: raw_orders
SELECT c.segment, SUM(o.amount) FROM gold.orders o JOIN gold.customers c ON o.order_id = c.customer_id GROUP BY c.segment;

-- expect: none
SELECT c.segment, SUM(o.amount) FROM gold.orders o JOIN gold.customers c ON o.customer_id = c.customer_id GROUP BY c.segment;

-- expect: agg_month
SELECT status, date_trunc('year', ordered_at) AS y, SUM(amount) FROM gold.orders GROUP BY ROLLUP (status, y);

-- expect: agg_fine
SELECT country, status, COUNT(*) FROM gold.orders GROUP BY CUBE (country, status);

-- expect: agg_fine
SELECT country, status, SUM(quantity) FROM gold.orders GROUP BY GROUPING SETS ((country), (status), ());

-- expect: agg_fine
SELECT country, status, GROUPING(country) AS g, COUNT(*) FROM gold.orders GROUP BY ROLLUP (country, status);

-- expect: agg_month
SELECT status, SUM(amount) FROM gold.orders GROUP BY ROLLUP (status) ORDER BY status NULLS LAST;

-- expect: agg_fine
SELECT customer_id, country, AVG(amount) FROM gold.orders WHERE customer_id < 5 GROUP BY GROUPING SETS ((customer_id, country), (customer_id));

-- expect: agg_month
SELECT status, COUNT(*) FILTER (WHERE date_trunc('month', ordered_at) = TIMESTAMP '2024-02-01') FROM gold.orders GROUP BY status;

-- expect: agg_fine
SELECT country, APPROX_COUNT_DISTINCT(order_id) FILTER (WHERE status = 'paid') FROM gold.orders GROUP BY country;

-- expect: agg_fine
SELECT country, COUNT(DISTINCT customer_id) FILTER (WHERE status = 'new') FROM gold.orders GROUP BY country;

-- expect: agg_fine
SELECT COUNT(customer_id) FILTER (WHERE country = 'FR') FROM gold.orders;

-- expect: agg_month
SELECT AVG(amount) FILTER (WHERE status IS NULL), MAX(status) FILTER (WHERE status < 'p') FROM gold.orders;

-- expect: raw_orders
SELECT status, SUM(amount) FROM gold.orders WHERE amount > 50 GROUP BY status;

-- expect: none
SELECT status, SUM(quantity) FROM gold.orders WHERE quantity > 3 GROUP BY status;

-- expect: none
SELECT quantity, COUNT(*) FROM gold.orders GROUP BY quantity;

-- expect: raw_orders
SELECT COUNT(DISTINCT amount) FROM gold.orders;

-- expect: none
SELECT status, COUNT(DISTINCT quantity) FROM gold.orders GROUP BY status;

-- expect: raw_orders
SELECT status, SUM(DISTINCT amount) FROM gold.orders GROUP BY status;

-- expect: raw_orders
SELECT status, median(amount) FROM gold.orders GROUP BY status;

-- expect: none
SELECT country, stddev_samp(quantity) FROM gold.orders GROUP BY country;

-- expect: raw_orders
SELECT date_trunc('hour', ordered_at) AS h, COUNT(*) FROM gold.orders GROUP BY 1;

-- expect: raw_orders
SELECT ordered_at, SUM(amount) FROM gold.orders GROUP BY ordered_at;

-- expect: raw_orders
SELECT hour(ordered_at) AS h, COUNT(*) FROM gold.orders GROUP BY 1;

-- expect: none
SELECT status, SUM(weight) FROM gold.orders WHERE weight > 10 GROUP BY status;

-- expect: raw_orders
SELECT order_id, amount FROM gold.orders WHERE status = 'paid' ORDER BY order_id LIMIT 10;

-- expect: none
SELECT * FROM gold.orders WHERE order_id = 5;

-- expect: none
SELECT order_id, quantity FROM gold.orders WHERE order_id < 10;

-- expect: none
SELECT country, string_agg(CAST(quantity AS VARCHAR), ',' ORDER BY order_id) FROM gold.orders WHERE customer_id = 3 GROUP BY country;

-- expect: raw_orders
SELECT status, list(amount ORDER BY order_id) FROM gold.orders WHERE country = 'FR' AND order_id < 200 GROUP BY status;

-- expect: raw_orders
SELECT status, arg_max(order_id, amount) FROM gold.orders GROUP BY status;

-- expect: none
SELECT customer_id, SUM(quantity * 2) FROM gold.orders GROUP BY customer_id;

-- expect: raw_orders
SELECT status, SUM(amount + 1) FROM gold.orders GROUP BY status;

-- expect: raw_orders
SELECT status, AVG(CAST(amount AS DOUBLE)) FROM gold.orders GROUP BY status;

-- expect: none
SELECT status, SUM(customer_id) FROM gold.orders GROUP BY status;

-- expect: raw_orders
SELECT status, COUNT(*) FROM gold.orders WHERE order_id % 2 = 0 GROUP BY status;

-- expect: raw_orders
SELECT status, row_number() OVER (PARTITION BY status ORDER BY order_id) AS rn FROM gold.orders WHERE order_id < 30;

-- expect: none
SELECT status, SUM(amount) FROM gold.orders AT (TIMESTAMP => TIMESTAMPTZ '2999-01-01') GROUP BY status;

-- expect: none
SELECT COUNT(*) FROM gold.orders USING SAMPLE 10 PERCENT (bernoulli, 7);

-- expect: raw_orders
SELECT status, COUNT(*) FROM gold.orders WHERE random() < 2 GROUP BY status;

-- expect: raw_orders
SELECT status, bool_and(amount > 1) FROM gold.orders GROUP BY status;

-- expect: none
SELECT country, weight, COUNT(*) FROM gold.orders GROUP BY country, weight;

-- expect: raw_orders
SELECT DISTINCT amount FROM gold.orders WHERE amount < 1;

-- expect: raw_orders
SELECT DISTINCT ON (status) status, order_id FROM gold.orders ORDER BY status, order_id DESC;

-- expect: none
SELECT DISTINCT ON (status) status, quantity FROM gold.orders ORDER BY status, quantity DESC NULLS LAST;

-- expect: raw_orders
SELECT date_trunc('minute', ordered_at) AS m, COUNT(*) FROM gold.orders WHERE order_id < 50 GROUP BY 1;

-- expect: none
SELECT status, SUM(amount) FROM gold.orders WHERE customer_id IN (SELECT customer_id FROM gold.customers WHERE segment = 'vip') GROUP BY status;

-- expect: raw_orders
SELECT order_id, status, amount FROM gold.orders WHERE country = 'DE' AND order_id < 200;

-- expect: raw_orders
SELECT order_id FROM gold.orders WHERE ordered_at >= TIMESTAMP '2024-12-01' ORDER BY order_id;

-- expect: raw_orders
SELECT status, amount FROM gold.orders ORDER BY amount DESC NULLS LAST, status LIMIT 5;

-- expect: raw_orders
SELECT COUNT(*) FROM gold.orders WHERE amount > 99;

-- expect: raw_orders
SELECT o.order_id, o.country FROM gold.orders AS o WHERE o.amount IS NULL;

-- expect: raw_orders
SELECT gold.orders.order_id FROM gold.orders WHERE gold.orders.order_id BETWEEN 10 AND 20;

-- expect: raw_orders
SELECT order_id, amount, ordered_at FROM gold.orders WHERE status IS NULL AND country IS NULL;

-- expect: raw_orders
SELECT MAX(order_id), MIN(ordered_at), MAX(ordered_at) FROM gold.orders WHERE amount BETWEEN 10 AND 11;

-- expect: raw_orders
SELECT country, COUNT(*) FROM gold.orders WHERE amount < 5 GROUP BY country;

-- expect: raw_orders
SELECT t.status FROM gold.orders t WHERE t.order_id IN (1, 2, 3);

-- expect: raw_orders
SELECT order_id FROM gold.orders WHERE order_id = (SELECT MAX(order_id) FROM gold.orders WHERE status = 'new');

-- expect: raw_orders
SELECT order_id, amount FROM gold.orders WHERE EXISTS (SELECT 1 FROM gold.customers c WHERE c.customer_id = gold.orders.order_id) AND order_id < 5;

-- expect: none
SELECT order_id, customer_id FROM gold.orders WHERE EXISTS (SELECT 1 FROM gold.customers c WHERE c.customer_id = gold.orders.customer_id) AND order_id < 5;

-- expect: agg_fine
SELECT status, SUM(amount) AS s, AVG(quantity) AS q FROM gold.orders WHERE country = 'FR' GROUP BY status ORDER BY status NULLS LAST;

-- expect: agg_fine
SELECT status, SUM(amount) AS s, AVG(quantity) AS q FROM gold.orders WHERE country = 'DE' GROUP BY status ORDER BY status NULLS LAST;

-- expect: agg_fine
SELECT status, SUM(amount) AS s, AVG(quantity) AS q FROM gold.orders WHERE country = 'JP' GROUP BY status ORDER BY status NULLS LAST;

-- expect: agg_fine
SELECT status, SUM(amount) AS s, AVG(quantity) AS q FROM gold.orders WHERE country = 'MA' GROUP BY status ORDER BY status NULLS LAST;

-- expect: agg_fine
SELECT status, SUM(amount) AS s, AVG(quantity) AS q FROM gold.orders WHERE country = 'CN' GROUP BY status ORDER BY status NULLS LAST;

-- expect: agg_fine
SELECT date_trunc('month', ordered_at) AS m, SUM(amount) FROM gold.orders WHERE customer_id = 3 GROUP BY 1 ORDER BY 1 NULLS FIRST;

-- expect: agg_fine
SELECT date_trunc('month', ordered_at) AS m, SUM(amount) FROM gold.orders WHERE customer_id = 11 GROUP BY 1 ORDER BY 1 NULLS FIRST;

-- expect: agg_fine
SELECT date_trunc('month', ordered_at) AS m, SUM(amount) FROM gold.orders WHERE customer_id = 27 GROUP BY 1 ORDER BY 1 NULLS FIRST;

-- expect: agg_fine
SELECT date_trunc('month', ordered_at) AS m, SUM(amount) FROM gold.orders WHERE customer_id = 39 GROUP BY 1 ORDER BY 1 NULLS FIRST;

-- expect: agg_fine
SELECT country, COUNT(*) FROM gold.orders WHERE date_trunc('week', ordered_at) >= TIMESTAMP '2024-02-05' GROUP BY country;

-- expect: agg_fine
SELECT country, COUNT(*) FROM gold.orders WHERE date_trunc('day', ordered_at) >= TIMESTAMP '2024-12-24' GROUP BY country;

-- expect: agg_fine
SELECT country, COUNT(*) FROM gold.orders WHERE date_trunc('month', ordered_at) >= TIMESTAMP '2024-11-01' GROUP BY country;

-- expect: agg_month
SELECT status, SUM(amount) FROM gold.orders WHERE ordered_at IS NOT NULL GROUP BY status;

-- expect: agg_fine
SELECT customer_id IS NULL AS anonymous, COUNT(*) FROM gold.orders GROUP BY 1;

-- expect: agg_fine
SELECT country, status, MIN(weight), MAX(weight), COUNT(weight) FROM gold.orders GROUP BY country, status;

-- expect: agg_month
SELECT status, date_trunc('month', ordered_at) AS m, AVG(amount) FROM gold.orders GROUP BY status, m HAVING AVG(amount) > 49 ORDER BY status, m;

-- expect: agg_fine
SELECT country, date_trunc('quarter', ordered_at) AS qt, SUM(quantity), COUNT(quantity) FROM gold.orders GROUP BY 1, 2;

-- expect: agg_fine
SELECT customer_id, COUNT(DISTINCT country), COUNT(DISTINCT status) FROM gold.orders GROUP BY customer_id;

-- expect: agg_fine
SELECT COUNT(DISTINCT customer_id) AS customers, COUNT(DISTINCT order_id) AS orders, SUM(amount) FROM gold.orders WHERE status = 'paid';


-- Range filters on a truncated time dimension: `>=` and `<` on a bound that starts a period of
-- the kept grain read the truncated values; `>`, `<=` and bounds inside a period do not.

-- expect: agg_fine
SELECT status, SUM(amount) FROM gold.orders WHERE ordered_at >= DATE '2024-03-15' AND ordered_at < DATE '2024-04-02' GROUP BY status;

-- expect: agg_month
SELECT status, SUM(amount) FROM gold.orders WHERE ordered_at >= DATE '2024-03-01' AND ordered_at < DATE '2024-06-01' GROUP BY status;

-- expect: agg_fine
SELECT country, COUNT(*) FROM gold.orders WHERE ordered_at >= CAST('2024-10-27' AS DATE) GROUP BY country;

-- expect: agg_fine
SELECT status, COUNT(*) FROM gold.orders WHERE DATE '2024-02-10' <= ordered_at AND DATE '2024-02-20' > ordered_at GROUP BY status;

-- expect: agg_month
SELECT COUNT(*), SUM(amount) FROM gold.orders WHERE ordered_at < TIMESTAMP '2024-07-01 00:00:00';

-- expect: raw_orders
SELECT status, SUM(amount) FROM gold.orders WHERE ordered_at > DATE '2024-03-15' GROUP BY status;

-- expect: raw_orders
SELECT status, SUM(amount) FROM gold.orders WHERE ordered_at <= DATE '2024-03-15' GROUP BY status;

-- expect: raw_orders
SELECT status, SUM(amount) FROM gold.orders WHERE ordered_at >= TIMESTAMP '2024-03-15 12:00:00' GROUP BY status;

-- expect: agg_fine
SELECT date_trunc('day', ordered_at) AS d, SUM(amount) FROM gold.orders WHERE ordered_at >= DATE '2024-12-01' GROUP BY 1 ORDER BY 1;

-- expect: none
SELECT customer_id, SUM(quantity) FROM gold.orders WHERE ordered_at > DATE '2024-03-15' GROUP BY customer_id;
