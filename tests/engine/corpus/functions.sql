-- The function corpus: one case (or more) per function of Dremio's SQL reference that Fleuve
-- runs, with the value Dremio documents, and one per function it refuses.
-- `-- <FUNCTION> <dialect>: <expected>` where expected is a Python literal (date, datetime,
-- time, Decimal, approx(x) for floating point, a list for one value per row in order) or
-- `refused` (an error naming the function). The query returns one column.
-- Tables: gold.orders (the shop) and gold.days (d DATE '2024-01-31', ts TIMESTAMP
-- '2024-01-31 10:00:00', t TIME '10:11:12').
-- VALUES rows below use t(i, x): (1, 10), (2, 20), (3, NULL), (4, 40).

-- == String =================================================================================

-- ASCII dremio: 65
SELECT ASCII('A') AS v;

-- BASE64 dremio: 'RHJlbWlv'
SELECT BASE64('Dremio') AS v;

-- BIT_LENGTH dremio: 24
SELECT BIT_LENGTH('abc') AS v;

-- BTRIM dremio: 'dremio'
SELECT BTRIM('~/~/dremio~/~/', '~/') AS v;

-- BTRIM dremio: 'dremio'
SELECT BTRIM('   dremio   ') AS v;

-- CHAR_LENGTH dremio: 5
SELECT CHAR_LENGTH('héllo') AS v;

-- CHARACTER_LENGTH dremio: 3
SELECT CHARACTER_LENGTH('東京都') AS v;

-- CHR dremio: 'H'
SELECT CHR(72) AS v;

-- CONCAT dremio: 'Dremio rocks'
SELECT CONCAT('Dremio', NULL, ' rocks') AS v;

-- CONCAT_WS dremio: 'cat-dog'
SELECT CONCAT_WS('-', 'cat', NULL, 'dog') AS v;

-- ENDS_WITH dremio: True
SELECT ENDS_WITH('dremio', 'mio') AS v;

-- INITCAP dremio: 'A Guide To Data Lakehouses'
SELECT INITCAP('a guide to data LAKEHOUSES') AS v;

-- LCASE dremio: 'dremio'
SELECT LCASE('DrEmIo') AS v;

-- LEFT dremio: 'Dr'
SELECT LEFT('Dremio', 2) AS v;

-- LENGTH dremio: 3
SELECT LENGTH('été') AS v;

-- LEVENSHTEIN dremio: 3
SELECT LEVENSHTEIN('kitten', 'sitting') AS v;

-- LOCATE dremio: 2
SELECT LOCATE('a', 'banana') AS v;

-- LOCATE dremio: 4
SELECT LOCATE('a', 'banana', 3) AS v;

-- LOWER dremio: 'dremio'
SELECT LOWER('DREMIO') AS v;

-- LPAD dremio: '--parameter'
SELECT LPAD('parameter', 11, '-') AS v;

-- LPAD dremio: 'dre'
SELECT LPAD('dremio', 3, '-') AS v;

-- LTRIM dremio: 'pancake  '
SELECT LTRIM('  pancake  ') AS v;

-- OCTET_LENGTH dremio: 5
SELECT OCTET_LENGTH('été') AS v;

-- POSITION dremio: 3
SELECT POSITION('n' IN 'banana') AS v;

-- REGEXP_EXTRACT dremio: 'example'
SELECT REGEXP_EXTRACT('john@example.com', '(\w+)@(\w+)', 2) AS v;

-- REGEXP_EXTRACT dremio: 'john@example'
SELECT REGEXP_EXTRACT('john@example.com', '(\w+)@(\w+)', 0) AS v;

-- REGEXP_LIKE dremio: True
SELECT REGEXP_LIKE('the data lakehouse', '.*?\Qlake\E.*?') AS v;

-- REGEXP_LIKE dremio: [False, True]
SELECT REGEXP_LIKE(c, '.*?\Q-\E.*?') AS v FROM (VALUES (1, 'WARRANTS'), (2, 'NON-CRIMINAL')) AS t(i, c) ORDER BY i;

-- REGEXP_MATCHES dremio: False
SELECT REGEXP_MATCHES('abc', 'b') AS v;

-- REGEXP_REPLACE dremio: 'a#b#c'
SELECT REGEXP_REPLACE('a1b22c', '[0-9]+', '#') AS v;

-- REPEAT dremio: 'abcabcabc'
SELECT REPEAT('abc', 3) AS v;

-- REPEATSTR dremio: 'abab'
SELECT REPEATSTR('ab', 2) AS v;

-- REPLACE dremio: 'THE DOGATONIC DOG'
SELECT REPLACE('THE CATATONIC CAT', 'CAT', 'DOG') AS v;

-- REVERSE dremio: '!dlrow ,olleH'
SELECT REVERSE('Hello, world!') AS v;

-- RIGHT dremio: 'mio'
SELECT RIGHT('Dremio', 3) AS v;

-- RPAD dremio: 'dremio!!!'
SELECT RPAD('dremio', 9, '!') AS v;

-- RTRIM dremio: '  pancake'
SELECT RTRIM('  pancake  ') AS v;

-- SPLIT_PART dremio: '127'
SELECT SPLIT_PART('127.0.0.1', '.', 1) AS v;

-- STARTS_WITH dremio: True
SELECT STARTS_WITH('dremio', 'dre') AS v;

-- STRPOS dremio: 3
SELECT STRPOS('banana', 'n') AS v;

-- SUBSTR dremio: 'em'
SELECT SUBSTR('dremio', 3, 2) AS v;

-- SUBSTR dremio: 'mio'
SELECT SUBSTR('dremio', -3) AS v;

-- SUBSTRING dremio: 'rem'
SELECT SUBSTRING('dremio' FROM 2 FOR 3) AS v;

-- TRANSLATE dremio: 'hippo'
SELECT TRANSLATE('hello', 'el', 'ip') AS v;

-- TRIM dremio: 'hi'
SELECT TRIM(BOTH 'x' FROM 'xxhixx') AS v;

-- TRIM dremio: 'pancake'
SELECT TRIM('  pancake  ') AS v;

-- UCASE dremio: 'DREMIO'
SELECT UCASE('Dremio') AS v;

-- UNBASE64 dremio: b'Dremio'
SELECT UNBASE64('RHJlbWlv') AS v;

-- UPPER dremio: 'ÉTÉ'
SELECT UPPER('été') AS v;

-- CONTAINS dremio: refused
SELECT CONTAINS(status, 'paid') AS v FROM gold.orders;

-- MASK dremio: refused
SELECT MASK('abc') AS v;

-- REGEXP_SPLIT dremio: refused
SELECT REGEXP_SPLIT('a1b2c', '[0-9]', 'ALL', 10) AS v;

-- SOUNDEX dremio: refused
SELECT SOUNDEX('Robert') AS v;

-- SUBSTRING_INDEX dremio: refused
SELECT SUBSTRING_INDEX('a,b,c', ',', 1) AS v;

-- TOASCII dremio: refused
SELECT TOASCII('été') AS v;

-- == Date/time ==============================================================================

-- CONVERT_TIMEZONE dremio: datetime(2021, 4, 1, 18, 27, 32)
SELECT CONVERT_TIMEZONE('America/Los_Angeles', 'America/New_York', TIMESTAMP '2021-04-01 15:27:32') AS v;

-- CONVERT_TIMEZONE dremio: datetime(2021, 4, 1, 11, 27, 32)
SELECT CONVERT_TIMEZONE('America/New_York', TIMESTAMP '2021-04-01 15:27:32') AS v;

-- CURRENT_DATE dremio: True
SELECT CURRENT_DATE > DATE '2024-01-01' AS v;

-- CURRENT_TIMESTAMP dremio: True
SELECT CURRENT_TIMESTAMP > TIMESTAMP '2024-01-01 00:00:00' AS v;

-- DATE_ADD dremio: date(2024, 2, 5)
SELECT DATE_ADD(DATE '2024-01-31', 5) AS v;

-- DATE_ADD dremio: datetime(2024, 2, 2, 10, 0)
SELECT DATE_ADD(TIMESTAMP '2024-01-31 10:00:00', 2) AS v;

-- DATE_ADD dremio: date(2024, 2, 29)
SELECT DATE_ADD(DATE '2024-01-31', CAST(1 AS INTERVAL MONTH)) AS v;

-- DATE_ADD dremio: datetime(2024, 1, 31, 13, 0)
SELECT DATE_ADD(TIMESTAMP '2024-01-31 10:00:00', CAST(3 AS INTERVAL HOUR)) AS v;

-- DATE_ADD dremio: date(2024, 2, 1)
SELECT DATE_ADD(d, 1) AS v FROM gold.days;

-- DATE_ADD dremio: datetime(2024, 2, 1, 10, 0)
SELECT DATE_ADD(ts, 1) AS v FROM gold.days;

-- DATE_ADD dremio: date(2024, 6, 8)
SELECT DATE_ADD(TO_DATE('01/06/2024', 'DD/MM/YYYY'), 7) AS v;

-- DATE_ADD dremio: refused
SELECT DATE_ADD(CONCAT('2024-01-', '31'), 1) AS v;

-- DATE_PART dremio: 2024
SELECT DATE_PART('year', TIMESTAMP '2024-03-05 14:07:09') AS v;

-- DATE_PART dremio: 7
SELECT DATE_PART('dow', DATE '2024-02-10') AS v;

-- DATE_SUB dremio: date(2024, 2, 29)
SELECT DATE_SUB(DATE '2024-03-01', 1) AS v;

-- DATE_SUB dremio: date(2023, 11, 30)
SELECT DATE_SUB(d, CAST(2 AS INTERVAL MONTH)) AS v FROM gold.days;

-- DATE_TRUNC dremio: datetime(2024, 3, 1, 0, 0)
SELECT DATE_TRUNC('MONTH', TIMESTAMP '2024-03-05 14:07:09') AS v;

-- DATE_TRUNC dremio: date(2024, 3, 1)
SELECT DATE_TRUNC('MONTH', DATE '2024-03-05') AS v;

-- DATE_TRUNC dremio: date(2024, 1, 29)
SELECT DATE_TRUNC('WEEK', d) AS v FROM gold.days;

-- DATEDIFF dremio: 58
SELECT DATEDIFF(DATE '2021-02-28', DATE '2021-01-01') AS v;

-- DATEDIFF dremio: 798
SELECT DATEDIFF('2005-04-09 12:05:55', '2003-02-01 11:43:22') AS v;

-- DATEDIFF dremio: -1
SELECT DATEDIFF(d, TIMESTAMP '2024-02-01 00:00:00') AS v FROM gold.days;

-- DATETYPE dremio: date(2024, 2, 10)
SELECT DATETYPE(2024, 2, 10) AS v;

-- DAY dremio: 10
SELECT DAY(DATE '2024-02-10') AS v;

-- DAYOFMONTH dremio: 31
SELECT DAYOFMONTH(ts) AS v FROM gold.days;

-- DAYOFWEEK dremio: 7
SELECT DAYOFWEEK(DATE '2024-02-10') AS v;

-- DAYOFWEEK dremio: 1
SELECT DAYOFWEEK(DATE '2024-02-11') AS v;

-- DAYOFYEAR dremio: 41
SELECT DAYOFYEAR(DATE '2024-02-10') AS v;

-- EXTRACT dremio: 14
SELECT EXTRACT(HOUR FROM TIMESTAMP '2024-03-05 14:07:09') AS v;

-- EXTRACT dremio: 4
SELECT EXTRACT(DOW FROM ts) AS v FROM gold.days;

-- HOUR dremio: 14
SELECT HOUR(TIMESTAMP '2024-03-05 14:07:09') AS v;

-- LAST_DAY dremio: date(2024, 2, 29)
SELECT LAST_DAY(DATE '2024-02-10') AS v;

-- MINUTE dremio: 7
SELECT MINUTE(TIMESTAMP '2024-03-05 14:07:09') AS v;

-- MONTH dremio: 3
SELECT MONTH(TIMESTAMP '2024-03-05 14:07:09') AS v;

-- MONTHS_BETWEEN dremio: approx(2.0)
SELECT MONTHS_BETWEEN(DATE '2022-01-01', DATE '2021-11-01') AS v;

-- NEXT_DAY dremio: date(2015, 1, 20)
SELECT NEXT_DAY(DATE '2015-01-14', 'TU') AS v;

-- NOW dremio: True
SELECT NOW() > TIMESTAMP '2024-01-01 00:00:00' AS v;

-- QUARTER dremio: 1
SELECT QUARTER(DATE '2024-02-10') AS v;

-- SECOND dremio: 9
SELECT SECOND(TIMESTAMP '2024-03-05 14:07:09') AS v;

-- TIMESTAMPADD dremio: date(2024, 2, 3)
SELECT TIMESTAMPADD(DAY, 3, DATE '2024-01-31') AS v;

-- TIMESTAMPADD dremio: date(2024, 2, 29)
SELECT TIMESTAMPADD(MONTH, 1, d) AS v FROM gold.days;

-- TIMESTAMPADD dremio: datetime(2024, 2, 1, 2, 0)
SELECT TIMESTAMPADD(HOUR, 3, TIMESTAMP '2024-01-31 23:00:00') AS v;

-- TIMESTAMPDIFF dremio: 1
SELECT TIMESTAMPDIFF(MONTH, DATE '2024-01-31', DATE '2024-03-01') AS v;

-- TIMESTAMPDIFF dremio: 1
SELECT TIMESTAMPDIFF(DAY, TIMESTAMP '2024-01-31 10:00:00', TIMESTAMP '2024-02-02 09:00:00') AS v;

-- TIMESTAMPDIFF dremio: -47
SELECT TIMESTAMPDIFF(HOUR, TIMESTAMP '2024-02-02 09:00:00', ts) AS v FROM gold.days;

-- TO_CHAR dremio: '2024-03'
SELECT TO_CHAR(TIMESTAMP '2024-03-05 14:07:09', 'YYYY-MM') AS v;

-- TO_CHAR dremio: '2021.02.11'
SELECT TO_CHAR(CAST('2021-02-11' AS DATE), 'yyyy.mm.dd') AS v;

-- TO_CHAR dremio: '01:02'
SELECT TO_CHAR(CAST('01:02:03' AS TIME), 'HH:MI') AS v;

-- TO_CHAR dremio: '2024-03-05 14:07:09.123'
SELECT TO_CHAR(TIMESTAMP '2024-03-05 14:07:09.123', 'YYYY-MM-DD HH24:MI:SS.FFF') AS v;

-- TO_CHAR dremio: 'Tuesday, 05 Mar 2024 02 PM'
SELECT TO_CHAR(TIMESTAMP '2024-03-05 14:07:09', 'DAY, DD MON YYYY HH12 AM') AS v;

-- TO_CHAR dremio: 'Tue March 065 24'
SELECT TO_CHAR(TIMESTAMP '2024-03-05 14:07:09', 'DY MONTH DDD YY') AS v;

-- TO_CHAR dremio: 'week of 2024'
SELECT TO_CHAR(d, '"week of" YYYY') AS v FROM gold.days;

-- TO_CHAR dremio: '10:11 AM'
SELECT TO_CHAR(t, 'HH:MI AM') AS v FROM gold.days;

-- TO_CHAR dremio: 12
SELECT COUNT(DISTINCT TO_CHAR(ordered_at, 'YYYY-MM')) AS v FROM gold.orders;

-- TO_CHAR dremio: ['2024-01', '2024-02', '2024-03']
SELECT TO_CHAR(ordered_at, 'YYYY-MM') AS v FROM gold.orders WHERE ordered_at < TIMESTAMP '2024-04-01 00:00:00' GROUP BY TO_CHAR(ordered_at, 'YYYY-MM') ORDER BY 1;

-- TO_CHAR dremio: refused
SELECT TO_CHAR(7.5, '#.#') AS v;

-- TO_CHAR dremio: refused
SELECT TO_CHAR(ordered_at, 'YYYY-WW') AS v FROM gold.orders;

-- TO_DATE dremio: date(2024, 6, 1)
SELECT TO_DATE('01/06/2024', 'DD/MM/YYYY') AS v;

-- TO_DATE dremio: date(2024, 6, 1)
SELECT TO_DATE('2024-06-01', 'YYYY-MM-DD') AS v;

-- TO_DATE dremio: refused
SELECT TO_DATE(c, f) AS v FROM (VALUES ('2024', 'YYYY')) AS t(c, f);

-- TO_TIME dremio: time(10, 11, 12)
SELECT TO_TIME('10:11:12', 'HH24:MI:SS') AS v;

-- TO_TIMESTAMP dremio: datetime(2024, 6, 1, 22, 11, 12)
SELECT TO_TIMESTAMP('2024-06-01 10:11:12 PM', 'YYYY-MM-DD HH:MI:SS AM') AS v;

-- TO_TIMESTAMP dremio: datetime(1970, 1, 1, 0, 0, 52)
SELECT TO_TIMESTAMP(52) AS v;

-- TO_TIMESTAMP dremio: datetime(2021, 12, 22, 0, 0)
SELECT TO_TIMESTAMP(1640131200) AS v;

-- UNIX_TIMESTAMP dremio: 1672531200
SELECT UNIX_TIMESTAMP('2023-01-01 00:00:00') AS v;

-- UNIX_TIMESTAMP dremio: 1672531200
SELECT UNIX_TIMESTAMP('01/01/2023', 'MM/DD/YYYY') AS v;

-- WEEK dremio: 6
SELECT WEEK(DATE '2024-02-10') AS v;

-- WEEKOFYEAR dremio: 1
SELECT WEEKOFYEAR(DATE '2024-01-01') AS v;

-- YEAR dremio: 2024
SELECT YEAR(d) AS v FROM gold.days;

-- DATE_DIFF dremio: refused
SELECT DATE_DIFF(DATE '2024-01-31', 5) AS v;

-- TIMESTAMPTYPE dremio: refused
SELECT TIMESTAMPTYPE(2024, 1, 31, 10, 0, 0) AS v;

-- TIMETYPE dremio: refused
SELECT TIMETYPE(10, 0, 0) AS v;

-- == Math ===================================================================================

-- ABS dremio: 2
SELECT ABS(-2) AS v;

-- ACOS dremio: approx(0.0)
SELECT ACOS(1) AS v;

-- ASIN dremio: approx(1.5707963267948966)
SELECT ASIN(1) AS v;

-- ATAN dremio: approx(0.7853981633974483)
SELECT ATAN(1) AS v;

-- ATAN2 dremio: approx(0.7853981633974483)
SELECT ATAN2(1, 1) AS v;

-- CBRT dremio: approx(3.0)
SELECT CBRT(27) AS v;

-- CEIL dremio: 2
SELECT CEIL(1.2) AS v;

-- CEILING dremio: -1
SELECT CEILING(-1.8) AS v;

-- COS dremio: approx(1.0)
SELECT COS(0) AS v;

-- COSH dremio: approx(1.0)
SELECT COSH(0) AS v;

-- COT dremio: approx(0.6420926159343306)
SELECT COT(1) AS v;

-- DEGREES dremio: approx(180.0)
SELECT DEGREES(PI()) AS v;

-- E dremio: approx(2.718281828459045)
SELECT E() AS v;

-- EXP dremio: approx(2.718281828459045)
SELECT EXP(1) AS v;

-- FLOOR dremio: 1
SELECT FLOOR(1.8) AS v;

-- LN dremio: approx(0.0)
SELECT LN(1) AS v;

-- LOG dremio: approx(3.0)
SELECT LOG(2, 8) AS v;

-- LOG dremio: approx(1.0)
SELECT LOG(E()) AS v;

-- LOG10 dremio: approx(3.0)
SELECT LOG10(1000) AS v;

-- MOD dremio: -1
SELECT MOD(-7, 3) AS v;

-- PI dremio: approx(3.141592653589793)
SELECT PI() AS v;

-- POW dremio: approx(8.0)
SELECT POW(2, 3) AS v;

-- POWER dremio: approx(1024.0)
SELECT POWER(2, 10) AS v;

-- RADIANS dremio: approx(3.141592653589793)
SELECT RADIANS(180) AS v;

-- RANDOM dremio: True
SELECT RANDOM() >= 0 AND RANDOM() < 1 AS v;

-- ROUND dremio: Decimal('2.57')
SELECT ROUND(2.567, 2) AS v;

-- ROUND dremio: -3
SELECT ROUND(-2.5) AS v;

-- SIGN dremio: -1
SELECT SIGN(-3) AS v;

-- SIN dremio: approx(0.0)
SELECT SIN(0) AS v;

-- SINH dremio: approx(0.0)
SELECT SINH(0) AS v;

-- SQRT dremio: approx(4.0)
SELECT SQRT(16) AS v;

-- TAN dremio: approx(0.0)
SELECT TAN(0) AS v;

-- TANH dremio: approx(0.0)
SELECT TANH(0) AS v;

-- TRUNC dremio: Decimal('2.5')
SELECT TRUNC(2.567, 1) AS v;

-- TRUNCATE dremio: Decimal('-2.56')
SELECT TRUNCATE(-2.567, 2) AS v;

-- == Conditional ============================================================================

-- CASE dremio: 'b'
SELECT CASE WHEN 1 > 2 THEN 'a' ELSE 'b' END AS v;

-- COALESCE dremio: 2
SELECT COALESCE(NULL, 2, 3) AS v;

-- GREATEST dremio: 5
SELECT GREATEST(1, 5, 3) AS v;

-- ISNULL dremio: [False, False, True, False]
SELECT ISNULL(x) AS v FROM (VALUES (1, 10), (2, 20), (3, NULL), (4, 40)) AS t(i, x) ORDER BY i;

-- LEAST dremio: 1
SELECT LEAST(1, 5, 3) AS v;

-- NULLIF dremio: None
SELECT NULLIF(1, 1) AS v;

-- NVL dremio: 'x'
SELECT NVL(NULL, 'x') AS v;

-- == Conversion =============================================================================

-- CAST dremio: 12
SELECT CAST('12' AS INTEGER) AS v;

-- HEX dremio: 'FF'
SELECT HEX(255) AS v;

-- TO_NUMBER dremio: approx(12.5)
SELECT TO_NUMBER('12.5', '##.#') AS v;

-- UNHEX dremio: b'Foo'
SELECT UNHEX('466F6F') AS v;

-- CONVERT_FROM dremio: refused
SELECT CONVERT_FROM('abc', 'UTF8') AS v;

-- CONVERT_TO dremio: refused
SELECT CONVERT_TO('abc', 'UTF8') AS v;

-- == Aggregate ==============================================================================

-- APPROX_COUNT_DISTINCT dremio: 3
SELECT APPROX_COUNT_DISTINCT(x) AS v FROM (VALUES (1, 10), (2, 20), (3, NULL), (4, 40)) AS t(i, x);

-- ARRAY_AGG dremio: [[1, 2, 3, 4]]
SELECT ARRAY_AGG(i) AS v FROM (VALUES (1, 10), (2, 20), (3, NULL), (4, 40)) AS t(i, x);

-- AVG dremio: approx(23.333333333333332)
SELECT AVG(x) AS v FROM (VALUES (1, 10), (2, 20), (3, NULL), (4, 40)) AS t(i, x);

-- BIT_AND dremio: 0
SELECT BIT_AND(i) AS v FROM (VALUES (1, 10), (2, 20), (3, NULL), (4, 40)) AS t(i, x);

-- BIT_OR dremio: 7
SELECT BIT_OR(i) AS v FROM (VALUES (1, 10), (2, 20), (3, NULL), (4, 40)) AS t(i, x);

-- BOOL_AND dremio: False
SELECT BOOL_AND(i > 1) AS v FROM (VALUES (1, 10), (2, 20), (3, NULL), (4, 40)) AS t(i, x);

-- BOOL_OR dremio: True
SELECT BOOL_OR(i > 3) AS v FROM (VALUES (1, 10), (2, 20), (3, NULL), (4, 40)) AS t(i, x);

-- CORR dremio: approx(1.0)
SELECT CORR(i, x) AS v FROM (VALUES (1, 10), (2, 20), (3, NULL), (4, 40)) AS t(i, x);

-- COUNT dremio: 4
SELECT COUNT(*) AS v FROM (VALUES (1, 10), (2, 20), (3, NULL), (4, 40)) AS t(i, x);

-- COUNT dremio: 3
SELECT COUNT(x) AS v FROM (VALUES (1, 10), (2, 20), (3, NULL), (4, 40)) AS t(i, x);

-- COVAR_POP dremio: approx(15.555555555555555)
SELECT COVAR_POP(i, x) AS v FROM (VALUES (1, 10), (2, 20), (3, NULL), (4, 40)) AS t(i, x);

-- COVAR_SAMP dremio: approx(23.333333333333332)
SELECT COVAR_SAMP(i, x) AS v FROM (VALUES (1, 10), (2, 20), (3, NULL), (4, 40)) AS t(i, x);

-- LISTAGG dremio: 'a,b,c'
SELECT LISTAGG(s, ',') WITHIN GROUP (ORDER BY s) AS v FROM (VALUES ('b'), ('c'), ('a')) AS t(s);

-- MAX dremio: 40
SELECT MAX(x) AS v FROM (VALUES (1, 10), (2, 20), (3, NULL), (4, 40)) AS t(i, x);

-- MEDIAN dremio: approx(20.0)
SELECT MEDIAN(x) AS v FROM (VALUES (1, 10), (2, 20), (3, NULL), (4, 40)) AS t(i, x);

-- MIN dremio: 10
SELECT MIN(x) AS v FROM (VALUES (1, 10), (2, 20), (3, NULL), (4, 40)) AS t(i, x);

-- NDV dremio: 3
SELECT NDV(x) AS v FROM (VALUES (1, 10), (2, 20), (3, NULL), (4, 40)) AS t(i, x);

-- PERCENTILE_CONT dremio: approx(30.0)
SELECT PERCENTILE_CONT(0.75) WITHIN GROUP (ORDER BY x) AS v FROM (VALUES (1, 10), (2, 20), (3, NULL), (4, 40)) AS t(i, x);

-- PERCENTILE_DISC dremio: 20
SELECT PERCENTILE_DISC(0.5) WITHIN GROUP (ORDER BY x) AS v FROM (VALUES (1, 10), (2, 20), (3, NULL), (4, 40)) AS t(i, x);

-- STDDEV dremio: approx(15.275252316519467)
SELECT STDDEV(x) AS v FROM (VALUES (1, 10), (2, 20), (3, NULL), (4, 40)) AS t(i, x);

-- STDDEV_POP dremio: approx(12.472191289246473)
SELECT STDDEV_POP(x) AS v FROM (VALUES (1, 10), (2, 20), (3, NULL), (4, 40)) AS t(i, x);

-- STDDEV_SAMP dremio: approx(15.275252316519467)
SELECT STDDEV_SAMP(x) AS v FROM (VALUES (1, 10), (2, 20), (3, NULL), (4, 40)) AS t(i, x);

-- SUM dremio: 70
SELECT SUM(x) AS v FROM (VALUES (1, 10), (2, 20), (3, NULL), (4, 40)) AS t(i, x);

-- VAR_POP dremio: approx(155.55555555555554)
SELECT VAR_POP(x) AS v FROM (VALUES (1, 10), (2, 20), (3, NULL), (4, 40)) AS t(i, x);

-- VAR_SAMP dremio: approx(233.33333333333334)
SELECT VAR_SAMP(x) AS v FROM (VALUES (1, 10), (2, 20), (3, NULL), (4, 40)) AS t(i, x);

-- VARIANCE dremio: approx(233.33333333333334)
SELECT VARIANCE(x) AS v FROM (VALUES (1, 10), (2, 20), (3, NULL), (4, 40)) AS t(i, x);

-- APPROX_PERCENTILE dremio: refused
SELECT APPROX_PERCENTILE(x, 0.5) AS v FROM (VALUES (1, 10), (2, 20), (3, NULL), (4, 40)) AS t(i, x);

-- HLL dremio: refused
SELECT HLL(x) AS v FROM (VALUES (1, 10), (2, 20), (3, NULL), (4, 40)) AS t(i, x);

-- == Window =================================================================================
-- Rows t(i): 1, 2, 2, 3.

-- CUME_DIST dremio: [approx(0.25), approx(0.75), approx(0.75), approx(1.0)]
SELECT CUME_DIST() OVER (ORDER BY i) AS v FROM (VALUES (1), (2), (2), (3)) AS t(i) ORDER BY i;

-- DENSE_RANK dremio: [1, 2, 2, 3]
SELECT DENSE_RANK() OVER (ORDER BY i) AS v FROM (VALUES (1), (2), (2), (3)) AS t(i) ORDER BY i;

-- FIRST_VALUE dremio: [1, 1, 1, 1]
SELECT FIRST_VALUE(i) OVER (ORDER BY i) AS v FROM (VALUES (1), (2), (2), (3)) AS t(i) ORDER BY i;

-- LAG dremio: [None, 1, 2, 2]
SELECT LAG(i) OVER (ORDER BY i) AS v FROM (VALUES (1), (2), (2), (3)) AS t(i) ORDER BY i;

-- LAST_VALUE dremio: [3, 3, 3, 3]
SELECT LAST_VALUE(i) OVER (ORDER BY i ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS v FROM (VALUES (1), (2), (2), (3)) AS t(i) ORDER BY i;

-- LEAD dremio: [2, 2, 3, 0]
SELECT LEAD(i, 1, 0) OVER (ORDER BY i) AS v FROM (VALUES (1), (2), (2), (3)) AS t(i) ORDER BY i;

-- NTILE dremio: [1, 1, 2, 2]
SELECT NTILE(2) OVER (ORDER BY i) AS v FROM (VALUES (1), (2), (2), (3)) AS t(i) ORDER BY i;

-- PERCENT_RANK dremio: [approx(0.0), approx(1 / 3), approx(1 / 3), approx(1.0)]
SELECT PERCENT_RANK() OVER (ORDER BY i) AS v FROM (VALUES (1), (2), (2), (3)) AS t(i) ORDER BY i;

-- RANK dremio: [1, 2, 2, 4]
SELECT RANK() OVER (ORDER BY i) AS v FROM (VALUES (1), (2), (2), (3)) AS t(i) ORDER BY i;

-- ROW_NUMBER dremio: [1, 2, 3, 4]
SELECT ROW_NUMBER() OVER (ORDER BY i) AS v FROM (VALUES (1), (2), (2), (3)) AS t(i) ORDER BY i;

-- == Outside Dremio's reference =============================================================

-- BAR dremio: refused
SELECT BAR(5, 0, 10) AS v;

-- DATE_FORMAT dremio: refused
SELECT DATE_FORMAT(ts, '%Y') AS v FROM gold.days;

-- == DuckDB dialect: Dremio / PostgreSQL-style formats ======================================

-- TO_CHAR duckdb: '2024-03'
SELECT TO_CHAR(TIMESTAMP '2024-03-05 14:07:09', 'YYYY-MM') AS v;

-- TO_CHAR duckdb: 12
SELECT COUNT(DISTINCT TO_CHAR(ordered_at, 'YYYY-MM')) AS v FROM gold.orders;

-- TO_CHAR duckdb: '31/01/2024 10h00'
SELECT TO_CHAR(ts, 'DD/MM/YYYY HH24"h"MI') AS v FROM gold.days;

-- TO_CHAR duckdb: '10h11'
SELECT TO_CHAR(days.t, 'HH24"h"MI') AS v FROM gold.days;

-- TO_CHAR duckdb: refused
SELECT TO_CHAR(7.5, '#.#') AS v;

-- TO_CHAR duckdb: refused
SELECT TO_CHAR(ts, 'YYYY-Q') AS v FROM gold.days;

-- TO_DATE duckdb: date(2024, 6, 1)
SELECT TO_DATE('01/06/2024', 'DD/MM/YYYY') AS v;

-- TO_TIMESTAMP duckdb: datetime(2024, 6, 1, 10, 11, 12)
SELECT TO_TIMESTAMP('2024-06-01 10:11:12', 'YYYY-MM-DD HH24:MI:SS') AS v;

-- TO_TIMESTAMP duckdb: datetime(1970, 1, 1, 0, 0, 52, tzinfo=timezone.utc)
SELECT TO_TIMESTAMP(52) AS v;

-- STRFTIME duckdb: '2024-01'
SELECT strftime(ts, '%Y-%m') AS v FROM gold.days;
