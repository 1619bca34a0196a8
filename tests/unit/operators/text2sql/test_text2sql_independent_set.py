"""An independent labelled set for result equivalence, written from the rule in the issue (not
from the implementation): (gold SQL, predicted SQL, equivalent?) on the sample databases.

The rule: rows are a multiset, columns compared by position; rows are an ordered list only when
the gold's OUTERMOST query has ORDER BY (not one inside a subquery, CTE, window, string or
comment); NULL = NULL; numbers equal within a relative tolerance of 1e-6 (600 == 600.0); text
exact and case-sensitive; text never equals a number nor a blob; a failing query (error,
timeout, too many rows, refused) is never equivalent; two empty results are equal.

Choices where the issue is silent (kept consistent with the module's docstring):
- two integers are equal only when identical (the tolerance is for float rounding; a count of
  1000000 is not 1000001);
- -0.0 equals 0.0 and 0 (they are the same number);
- two empty results are equal whatever their column counts.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from dataflow_operators.text2sql._equivalence import compare_results
from dataflow_operators.text2sql._sqltext import outer_order_by

from dataflow_cli.sandbox.sql import SqlGuard, SqlLimits, hash_file

DATABASES = Path(__file__).resolve().parents[4] / "pipelines" / "text2sql_generate" / "databases"
B, U, W = "bookstore", "university", "world"

# (database, gold, predicted, equivalent?)
PAIRS: list[tuple[str, str, str, bool]] = [
    # --- ordering: only the gold's outermost ORDER BY makes order count ---
    (
        B,
        "SELECT title FROM books ORDER BY price DESC, book_id",
        "SELECT title FROM books ORDER BY price ASC, book_id",
        False,
    ),
    (B, "SELECT name FROM authors", "SELECT name FROM authors ORDER BY name DESC", True),
    (
        B,
        "SELECT name FROM authors ORDER BY author_id",
        "SELECT name FROM authors ORDER BY author_id DESC",
        False,
    ),
    (B, "SELECT name FROM authors ORDER BY author_id", "SELECT name FROM authors ORDER BY author_id", True),
    (
        B,
        "WITH t AS (SELECT name FROM authors ORDER BY name) SELECT name FROM t",
        "SELECT name FROM authors ORDER BY name DESC",
        True,
    ),
    (
        B,
        "SELECT name FROM (SELECT name FROM authors ORDER BY name DESC)",
        "SELECT name FROM authors ORDER BY name",
        True,
    ),
    (
        B,
        "SELECT name, row_number() OVER (ORDER BY author_id) FROM authors",
        "SELECT name, row_number() OVER (ORDER BY author_id) FROM authors ORDER BY author_id DESC",
        True,
    ),
    (
        B,
        "SELECT 'ORDER BY' AS s, name FROM authors",
        "SELECT 'ORDER BY' AS s, name FROM authors ORDER BY name DESC",
        True,
    ),
    (
        B,
        "SELECT name FROM authors ORDER BY name LIMIT 5",
        "SELECT name FROM authors ORDER BY name DESC LIMIT 5",
        False,
    ),
    (
        B,
        "SELECT title FROM books ORDER BY book_id LIMIT 5",
        "SELECT title FROM (SELECT title, book_id FROM books ORDER BY book_id LIMIT 5) ORDER BY book_id DESC",
        False,
    ),
    (
        B,
        "SELECT title FROM (SELECT title, book_id FROM books ORDER BY book_id LIMIT 5)",
        "SELECT title FROM books WHERE book_id <= 5 ORDER BY book_id DESC",
        True,
    ),
    (
        B,
        "SELECT name FROM authors UNION SELECT name FROM customers ORDER BY 1",
        "SELECT name FROM customers UNION SELECT name FROM authors ORDER BY 1 DESC",
        False,
    ),
    (
        B,
        "SELECT name FROM authors UNION SELECT name FROM customers",
        "SELECT name FROM customers UNION SELECT name FROM authors ORDER BY 1 DESC",
        True,
    ),
    (
        B,
        "SELECT name FROM authors UNION SELECT name FROM customers ORDER BY 1",
        "SELECT name FROM customers UNION SELECT name FROM authors ORDER BY 1",
        True,
    ),
    (
        B,
        "SELECT price FROM books ORDER BY price DESC LIMIT 3",
        "SELECT price FROM books ORDER BY price DESC, book_id DESC LIMIT 3",
        True,
    ),
    (
        B,
        "SELECT book_id FROM books WHERE price = 14.99 ORDER BY book_id LIMIT 3",
        "SELECT book_id FROM books WHERE price = 14.99 ORDER BY book_id DESC LIMIT 3",
        False,
    ),
    (B, "SELECT price FROM books ORDER BY price", "SELECT price FROM books ORDER BY price, title DESC", True),
    (
        B,
        "SELECT genre FROM books ORDER BY genre",
        "SELECT genre FROM books ORDER BY genre, book_id DESC",
        True,
    ),
    (
        B,
        "SELECT title, price FROM books ORDER BY price DESC, book_id LIMIT 5",
        "SELECT title, price FROM books ORDER BY price DESC, book_id LIMIT 5 OFFSET 0",
        True,
    ),
    (B, "SELECT name FROM authors -- ORDER BY name", "SELECT name FROM authors ORDER BY name DESC", True),
    (B, "/* ORDER BY name */ SELECT name FROM authors", "SELECT name FROM authors ORDER BY name DESC", True),
    (
        B,
        "SELECT name FROM authors WHERE author_id IN (SELECT author_id FROM books ORDER BY price LIMIT 10)",
        "SELECT name FROM authors WHERE author_id IN (SELECT author_id FROM books ORDER BY price LIMIT 10) ORDER BY name DESC",
        True,
    ),
    (
        B,
        "SELECT group_concat(name, ',') FROM (SELECT name FROM authors ORDER BY name)",
        "SELECT group_concat(name, ',') FROM (SELECT name FROM authors ORDER BY name DESC)",
        False,
    ),
    (
        B,
        "SELECT name, (SELECT title FROM books b WHERE b.author_id = a.author_id ORDER BY price DESC, book_id LIMIT 1) FROM authors a",
        "SELECT name, (SELECT title FROM books b WHERE b.author_id = a.author_id ORDER BY price DESC, book_id LIMIT 1) FROM authors a ORDER BY a.author_id DESC",
        True,
    ),
    (
        B,
        "SELECT country FROM authors ORDER BY country",
        "SELECT country FROM authors ORDER BY country NULLS LAST",
        False,
    ),
    (
        B,
        "SELECT country FROM authors ORDER BY country NULLS FIRST",
        "SELECT country FROM authors ORDER BY country",
        True,
    ),
    (
        B,
        "SELECT birth_year FROM authors ORDER BY birth_year DESC",
        "SELECT birth_year FROM authors ORDER BY coalesce(birth_year, -1) DESC",
        True,
    ),
    (
        B,
        "WITH x AS (SELECT name FROM authors) SELECT name FROM x ORDER BY name",
        "SELECT name FROM authors ORDER BY name",
        True,
    ),
    (
        B,
        "WITH x AS (SELECT name FROM authors) SELECT name FROM x ORDER BY name",
        "SELECT name FROM authors ORDER BY name DESC",
        False,
    ),
    (
        B,
        "SELECT * FROM (SELECT name FROM authors UNION SELECT name FROM publishers ORDER BY 1)",
        "SELECT name FROM publishers UNION SELECT name FROM authors ORDER BY 1 DESC",
        True,
    ),
    (B, "SELECT 'a ORDER BY b' UNION ALL SELECT 'x'", "SELECT 'x' UNION ALL SELECT 'a ORDER BY b'", True),
    (B, "select name from authors order by name", "SELECT name FROM authors ORDER BY name DESC", False),
    (B, "SELECT name FROM authors ORDER BY name; -- x", "SELECT name FROM authors ORDER BY name DESC", False),
    (B, "-- note; x\nSELECT name FROM authors ORDER BY name", "SELECT name FROM authors ORDER BY name", True),
    (
        B,
        "SELECT name, rank() OVER w FROM authors WINDOW w AS (ORDER BY author_id)",
        "SELECT name, rank() OVER (ORDER BY author_id) FROM authors ORDER BY name DESC",
        True,
    ),
    (
        B,
        "SeLeCt name FrOm authors OrDeR bY name LiMiT 3",
        "SELECT name FROM authors ORDER BY name LIMIT 3",
        True,
    ),
    (
        W,
        "SELECT name FROM countries ORDER BY population DESC LIMIT 3",
        "SELECT name FROM (SELECT name, population FROM countries ORDER BY population DESC LIMIT 3) ORDER BY population ASC",
        False,
    ),
    (
        W,
        "SELECT name FROM (SELECT name, population FROM countries ORDER BY population DESC LIMIT 3)",
        "SELECT name FROM (SELECT name, population FROM countries ORDER BY population DESC LIMIT 3) ORDER BY population ASC",
        True,
    ),
    (
        W,
        "SELECT name FROM countries ORDER BY population DESC",
        "SELECT name FROM countries ORDER BY -population",
        True,
    ),
    (
        W,
        "SELECT name, rank() OVER (ORDER BY population DESC) FROM countries",
        "SELECT name, rank() OVER (ORDER BY population DESC) FROM countries ORDER BY name",
        True,
    ),
    (
        W,
        "SELECT name, rank() OVER (ORDER BY population DESC) AS r FROM countries ORDER BY r",
        "SELECT name, rank() OVER (ORDER BY population DESC) FROM countries ORDER BY name",
        False,
    ),
    (
        W,
        "SELECT continent, count(*) FROM countries GROUP BY continent ORDER BY count(*) DESC, continent",
        "SELECT continent, count(*) FROM countries GROUP BY continent ORDER BY count(*) DESC, continent DESC",
        False,
    ),
    (
        W,
        "SELECT count(*) FROM countries GROUP BY continent ORDER BY count(*) DESC",
        "SELECT count(*) FROM countries GROUP BY continent ORDER BY 1 DESC",
        True,
    ),
    (
        W,
        "SELECT count(*) FROM countries GROUP BY continent ORDER BY count(*) DESC",
        "SELECT count(*) FROM countries GROUP BY continent ORDER BY 1",
        False,
    ),
    (
        U,
        "SELECT budget FROM departments WHERE budget IS NOT NULL ORDER BY budget",
        "SELECT CAST(budget AS INTEGER) FROM departments WHERE budget IS NOT NULL ORDER BY budget",
        True,
    ),
    (
        U,
        "SELECT name, salary FROM instructors ORDER BY salary DESC, instructor_id LIMIT 3",
        "SELECT name, salary FROM instructors ORDER BY salary DESC, instructor_id DESC LIMIT 3",
        False,
    ),
    (
        U,
        "SELECT salary FROM instructors ORDER BY salary DESC LIMIT 3",
        "SELECT salary FROM instructors ORDER BY salary DESC, name LIMIT 3",
        True,
    ),
    (
        U,
        "SELECT salary FROM instructors ORDER BY salary DESC LIMIT 6",
        "SELECT salary FROM instructors ORDER BY salary DESC LIMIT 5",
        False,
    ),
    # --- duplicates, DISTINCT, set operations ---
    (B, "SELECT genre FROM books", "SELECT DISTINCT genre FROM books", False),
    (B, "SELECT DISTINCT genre FROM books", "SELECT genre FROM books GROUP BY genre", True),
    (
        B,
        "SELECT country FROM authors UNION SELECT country FROM customers",
        "SELECT country FROM authors UNION ALL SELECT country FROM customers",
        False,
    ),
    (
        B,
        "SELECT genre FROM books WHERE price > 30 UNION ALL SELECT genre FROM books WHERE price <= 30",
        "SELECT genre FROM books",
        True,
    ),
    (
        B,
        "SELECT genre FROM books WHERE price > 30 UNION SELECT genre FROM books WHERE price <= 30",
        "SELECT DISTINCT genre FROM books",
        True,
    ),
    (B, "SELECT DISTINCT country FROM authors", "SELECT country FROM authors GROUP BY country", True),
    (
        B,
        "SELECT DISTINCT country FROM authors",
        "SELECT DISTINCT country FROM authors WHERE country IS NOT NULL",
        False,
    ),
    (
        B,
        "SELECT city FROM customers",
        "SELECT city FROM customers UNION ALL SELECT city FROM customers",
        False,
    ),
    (B, "SELECT column1 FROM (VALUES (1), (1), (2))", "SELECT column1 FROM (VALUES (1), (2), (2))", False),
    (B, "SELECT column1 FROM (VALUES (1), (1), (2))", "SELECT column1 FROM (VALUES (2), (1), (1))", True),
    (
        B,
        "SELECT country FROM authors INTERSECT SELECT country FROM customers",
        "SELECT DISTINCT a.country FROM authors a JOIN customers c ON a.country = c.country",
        True,
    ),
    (
        B,
        "SELECT country FROM customers EXCEPT SELECT country FROM authors",
        "SELECT DISTINCT country FROM customers WHERE country NOT IN (SELECT country FROM authors)",
        True,
    ),
    (
        B,
        "SELECT DISTINCT a.name FROM authors a JOIN books b ON a.author_id = b.author_id",
        "SELECT name FROM authors WHERE author_id IN (SELECT author_id FROM books)",
        True,
    ),
    (
        B,
        "SELECT a.name FROM authors a JOIN books b ON a.author_id = b.author_id",
        "SELECT name FROM authors WHERE author_id IN (SELECT author_id FROM books)",
        False,
    ),
    (
        W,
        "SELECT name FROM cities WHERE population IS NULL",
        "SELECT name FROM cities WHERE population IS NULL UNION SELECT name FROM cities WHERE population IS NULL",
        True,
    ),
    (
        W,
        "SELECT name FROM cities WHERE population IS NULL",
        "SELECT name FROM cities WHERE population IS NULL UNION ALL SELECT name FROM cities WHERE population IS NULL",
        False,
    ),
    # --- columns: by position, never by name ---
    (B, "SELECT name, country FROM authors", "SELECT country, name FROM authors", False),
    (B, "SELECT name FROM authors", "SELECT name, country FROM authors", False),
    (B, "SELECT name AS a FROM authors", "SELECT name AS b FROM authors", True),
    (B, "SELECT name, name FROM authors", "SELECT name FROM authors", False),
    (B, "SELECT count(*) FROM authors", "SELECT count(*), 1 FROM authors", False),
    (B, "SELECT min(price), max(price) FROM books", "SELECT max(price), min(price) FROM books", False),
    (
        B,
        "SELECT min(price), max(price) FROM books",
        "SELECT min(price) AS hi, max(price) AS lo FROM books",
        True,
    ),
    (B, "SELECT max(price) FROM books", "SELECT price FROM books ORDER BY price DESC LIMIT 1", True),
    (
        B,
        "SELECT title FROM books ORDER BY price DESC LIMIT 1",
        "SELECT title FROM books WHERE price = (SELECT max(price) FROM books)",
        False,
    ),
    (B, "SELECT * FROM publishers", "SELECT publisher_id, name, city, founded FROM publishers", True),
    (B, "SELECT * FROM publishers", "SELECT name, publisher_id, city, founded FROM publishers", False),
    # --- integer vs real division, ROUND, averages ---
    (B, "SELECT 7 / 2", "SELECT 7.0 / 2", False),
    (B, "SELECT 6 / 2", "SELECT 6.0 / 2", True),
    (B, "SELECT avg(price) FROM books", "SELECT sum(price) / count(*) FROM books", True),
    (B, "SELECT sum(quantity) / count(*) FROM order_items", "SELECT avg(quantity) FROM order_items", False),
    (
        B,
        "SELECT CAST(sum(quantity) AS REAL) / count(*) FROM order_items",
        "SELECT avg(quantity) FROM order_items",
        True,
    ),
    (B, "SELECT round(avg(price), 2) FROM books", "SELECT avg(price) FROM books", False),
    (B, "SELECT round(avg(price), 7) FROM books", "SELECT avg(price) FROM books", True),
    (B, "SELECT round(2.5)", "SELECT 3", True),
    (B, "SELECT round(2.4)", "SELECT 2.4", False),
    (B, "SELECT round(1234.5678, 1)", "SELECT 1234.6", True),
    (
        U,
        "SELECT budget / 1000 FROM departments",
        "SELECT CAST(budget AS INTEGER) / 1000 FROM departments",
        True,
    ),
    (
        U,
        "SELECT CAST(budget AS INTEGER) / 100000 FROM departments",
        "SELECT budget / 100000 FROM departments",
        False,
    ),
    (U, "SELECT avg(gpa) FROM students", "SELECT sum(gpa) / count(*) FROM students", False),
    (U, "SELECT avg(gpa) FROM students", "SELECT sum(gpa) / count(gpa) FROM students", True),
    (U, "SELECT budget FROM departments", "SELECT budget * 1.0 FROM departments", True),
    (
        W,
        "SELECT population / area_km2 FROM countries",
        "SELECT CAST(population AS REAL) / area_km2 FROM countries",
        True,
    ),
    (W, "SELECT population / 1000000 FROM countries", "SELECT population / 1000000.0 FROM countries", False),
    (W, "SELECT sum(population) FROM countries", "SELECT sum(CAST(population AS REAL)) FROM countries", True),
    # --- COUNT(*) vs COUNT(col) with NULLs, GROUP BY ---
    (B, "SELECT count(*) FROM authors", "SELECT count(country) FROM authors", False),
    (B, "SELECT count(*) FROM books", "SELECT count(book_id) FROM books", True),
    (
        B,
        "SELECT count(DISTINCT country) FROM authors",
        "SELECT count(*) FROM (SELECT DISTINCT country FROM authors)",
        False,
    ),
    (
        B,
        "SELECT count(DISTINCT country) FROM authors",
        "SELECT count(*) FROM (SELECT DISTINCT country FROM authors WHERE country IS NOT NULL)",
        True,
    ),
    (B, "SELECT count(email) FROM customers", "SELECT count(*) FROM customers WHERE email IS NOT NULL", True),
    (
        B,
        "SELECT genre, count(*) FROM books GROUP BY genre",
        "SELECT genre, count(*) FROM books GROUP BY genre ORDER BY count(*) DESC",
        True,
    ),
    (
        B,
        "SELECT genre, count(*) FROM books GROUP BY genre ORDER BY count(*) DESC",
        "SELECT genre, count(*) FROM books GROUP BY genre",
        False,
    ),
    (
        B,
        "SELECT genre, count(*) FROM books GROUP BY genre ORDER BY genre",
        "SELECT genre, count(*) FROM books GROUP BY genre",
        True,
    ),
    (
        B,
        "SELECT genre, avg(price) FROM books GROUP BY genre",
        "SELECT genre, sum(price) / count(price) FROM books GROUP BY genre",
        True,
    ),
    (
        B,
        "SELECT count(*) FROM books GROUP BY genre",
        "SELECT count(*) FROM books GROUP BY publisher_id",
        False,
    ),
    (
        B,
        "SELECT genre, count(*) FROM books GROUP BY genre HAVING count(*) > 20",
        "SELECT genre, count(*) FROM books GROUP BY genre HAVING count(*) >= 20",
        True,
    ),
    (
        B,
        "SELECT genre, count(*) FROM books GROUP BY genre HAVING count(*) > 18",
        "SELECT genre, count(*) FROM books GROUP BY genre HAVING count(*) >= 18",
        False,
    ),
    (
        U,
        "SELECT grade, count(*) FROM enrollments GROUP BY grade",
        "SELECT grade, count(grade) FROM enrollments GROUP BY grade",
        False,
    ),
    (
        U,
        "SELECT dept_id, count(*) FROM students GROUP BY dept_id",
        "SELECT dept_id, count(*) FROM students WHERE dept_id IS NOT NULL GROUP BY dept_id",
        False,
    ),
    (
        U,
        "SELECT dept_id, count(*) FROM students GROUP BY dept_id",
        "SELECT dept_id, count(student_id) FROM students GROUP BY 1",
        True,
    ),
    # --- LEFT vs INNER join with NULLs ---
    (
        B,
        "SELECT b.title, p.name FROM books b LEFT JOIN publishers p ON b.publisher_id = p.publisher_id",
        "SELECT b.title, p.name FROM books b JOIN publishers p ON b.publisher_id = p.publisher_id",
        False,
    ),
    (
        B,
        "SELECT b.title, p.name FROM books b JOIN publishers p ON b.publisher_id = p.publisher_id",
        "SELECT b.title, p.name FROM books b LEFT JOIN publishers p ON b.publisher_id = p.publisher_id WHERE p.publisher_id IS NOT NULL",
        True,
    ),
    (
        B,
        "SELECT a.name, count(b.book_id) FROM authors a LEFT JOIN books b ON a.author_id = b.author_id GROUP BY a.author_id",
        "SELECT a.name, count(*) FROM authors a LEFT JOIN books b ON a.author_id = b.author_id GROUP BY a.author_id",
        False,
    ),
    (
        B,
        "SELECT count(*) FROM books b JOIN authors a ON a.author_id = b.author_id",
        "SELECT count(*) FROM books",
        True,
    ),
    (
        U,
        "SELECT s.name, d.name FROM students s LEFT JOIN departments d ON s.dept_id = d.dept_id",
        "SELECT s.name, d.name FROM students s JOIN departments d ON s.dept_id = d.dept_id",
        False,
    ),
    (
        W,
        "SELECT c.name, ci.name FROM countries c LEFT JOIN cities ci ON ci.country_code = c.code AND ci.is_capital = 1",
        "SELECT c.name, ci.name FROM countries c JOIN cities ci ON ci.country_code = c.code AND ci.is_capital = 1",
        False,
    ),
    (
        W,
        "SELECT c.name, count(l.language) FROM countries c LEFT JOIN languages l ON l.country_code = c.code GROUP BY c.code",
        "SELECT c.name, count(*) FROM countries c LEFT JOIN languages l ON l.country_code = c.code GROUP BY c.code",
        False,
    ),
    # --- NULL ---
    (B, "SELECT NULL", "SELECT NULL", True),
    (B, "SELECT NULL", "SELECT ''", False),
    (B, "SELECT ''", "SELECT NULL", False),
    (B, "SELECT NULL", "SELECT 0", False),
    (B, "SELECT NULL, 1", "SELECT NULL, 1.0", True),
    (B, "SELECT nullif('', '')", "SELECT NULL", True),
    (B, "SELECT country FROM authors", "SELECT coalesce(country, '') FROM authors", False),
    (B, "SELECT email FROM customers", "SELECT coalesce(email, '') FROM customers", False),
    (B, "SELECT city FROM publishers", "SELECT city FROM publishers ORDER BY city DESC", True),
    (U, "SELECT gpa FROM students", "SELECT ifnull(gpa, NULL) FROM students", True),
    (U, "SELECT sum(score) FROM enrollments WHERE 0", "SELECT NULL", True),
    (U, "SELECT total(score) FROM enrollments WHERE 0", "SELECT 0", True),
    (U, "SELECT count(*) FROM enrollments WHERE 0", "SELECT 0", True),
    (U, "SELECT sum(score) FROM enrollments WHERE 0", "SELECT 0", False),
    (U, "SELECT name FROM students WHERE gpa > 3.5", "SELECT name FROM students WHERE NOT gpa <= 3.5", True),
    (
        U,
        "SELECT name FROM students WHERE NOT gpa > 3.5",
        "SELECT name FROM students WHERE gpa <= 3.5 OR gpa IS NULL",
        False,
    ),
    (W, "SELECT max(gdp_musd) FROM countries WHERE continent = 'Antarctica'", "SELECT NULL", True),
    (
        W,
        "SELECT name FROM countries WHERE independence_year IS NULL",
        "SELECT name FROM countries WHERE independence_year = NULL",
        False,
    ),
    # --- empty results ---
    (B, "SELECT name FROM authors WHERE 0", "SELECT name, country FROM authors WHERE 1 = 2", True),
    (
        B,
        "SELECT name FROM authors WHERE 0",
        "SELECT name FROM authors WHERE author_id < 0 ORDER BY name",
        True,
    ),
    (B, "SELECT name FROM authors WHERE 0 ORDER BY name", "SELECT title FROM books WHERE price < 0", True),
    (B, "SELECT name FROM authors WHERE 0", "SELECT NULL", False),
    (B, "SELECT NULL", "SELECT name FROM authors WHERE 0", False),
    (
        W,
        "SELECT name FROM countries WHERE independence_year = NULL",
        "SELECT name FROM countries WHERE 0",
        True,
    ),
    (
        W,
        "SELECT language FROM languages WHERE is_official",
        "SELECT language FROM languages WHERE is_official = 'true'",
        False,
    ),
    (U, "SELECT 'x' FROM courses WHERE credits = 99", "SELECT 'y' FROM courses WHERE 0", True),
    # --- failures are never equivalent ---
    (B, "SELECT name FROM authors WHERE 0", "SELECT nme FROM authors WHERE 0", False),
    (B, "SELECT name FROM authors", "SELECT nam FROM authors", False),
    (B, "SELECT nam FROM authors", "SELECT nam FROM authors", False),
    (B, "SELECT name FROM authors", "SELEC name FROM authors", False),
    (B, "SELECT name FROM authors", "SELECT name FROM author", False),
    (B, "SELECT name FROM authors WHERE 0", "DELETE FROM authors WHERE 0", False),
    (B, "SELECT 1", "SELECT 1; SELECT 1", False),
    (
        B,
        "SELECT 1",
        "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c) SELECT 1 FROM c LIMIT 1 OFFSET 100000000",
        False,
    ),
    (B, "SELECT 1 FROM authors, books, customers", "SELECT 1 FROM authors, books, customers", False),
    (B, "SELECT 9223372036854775807", "SELECT abs(-9223372036854775808)", False),
    (B, "SELECT NULL", "SELECT json_extract('not json', '$')", False),
    (B, "SELECT 1 WHERE 0", "SELECT * FROM pragma_nonexistent_thing", False),
    # --- numbers vs text, tolerance, booleans, blobs ---
    (B, "SELECT 1", "SELECT '1'", False),
    (B, "SELECT '1'", "SELECT 1", False),
    (B, "SELECT 600", "SELECT 600.0", True),
    (B, "SELECT 600.0", "SELECT 600", True),
    (B, "SELECT CAST(600 AS TEXT)", "SELECT '600'", True),
    (B, "SELECT '600.0'", "SELECT '600'", False),
    (B, "SELECT 0.1 + 0.2", "SELECT 0.3", True),
    (B, "SELECT 1.0000001", "SELECT 1.0", True),
    (B, "SELECT 1.00001", "SELECT 1.0", False),
    (B, "SELECT 1e-7", "SELECT 1.0000001e-7", True),
    (B, "SELECT 1e-7", "SELECT 2e-7", False),
    (B, "SELECT -0.0", "SELECT 0.0", True),
    # Rounding noise around zero: the module's documented absolute floor (1e-9) applies.
    (B, "SELECT 0.1 + 0.2 - 0.3", "SELECT 0", True),
    (B, "SELECT -0.0", "SELECT 0", True),
    (B, "SELECT 3, 'a'", "SELECT 3.0000000001, 'a'", True),
    (B, "SELECT 3, 'a'", "SELECT 3, 'A'", False),
    (B, "SELECT 9223372036854775807", "SELECT 9223372036854775807", True),
    (B, "SELECT 9223372036854775807", "SELECT '9223372036854775807'", False),
    (B, "SELECT 9007199254740993", "SELECT 9007199254740992", False),
    (B, "SELECT 4611686018427387904 * 2", "SELECT 9223372036854775807", True),
    (B, "SELECT 1e308 * 10", "SELECT 1e999", True),
    (B, "SELECT x'41'", "SELECT 'A'", False),
    (B, "SELECT x'41'", "SELECT CAST('A' AS BLOB)", True),
    (B, "SELECT x'31'", "SELECT 1", False),
    (B, "SELECT 1 = 1", "SELECT 'true'", False),
    (B, "SELECT 1 = 1", "SELECT 1", True),
    (B, "SELECT 1 = 0", "SELECT 'false'", False),
    (
        W,
        "SELECT is_capital FROM cities",
        "SELECT CASE WHEN is_capital THEN 'true' ELSE 'false' END FROM cities",
        False,
    ),
    (W, "SELECT is_capital = 1 FROM cities", "SELECT is_capital FROM cities", True),
    (B, "SELECT author_id FROM authors", "SELECT CAST(author_id AS TEXT) FROM authors", False),
    (B, "SELECT author_id FROM authors", "SELECT CAST(author_id AS REAL) FROM authors", True),
    (U, "SELECT course_id FROM courses", "SELECT CAST(course_id AS INTEGER) FROM courses", False),
    (
        U,
        "SELECT title, credits FROM courses WHERE credits = 4",
        "SELECT title, credits FROM courses WHERE credits = '4'",
        True,
    ),
    (B, "SELECT typeof(1)", "SELECT 'integer'", True),
    (B, "SELECT printf('%.2f', 2.5)", "SELECT 2.5", False),
    (B, "SELECT printf('%.2f', 2.5)", "SELECT '2.50'", True),
    (
        B,
        "SELECT column1, column2 FROM (VALUES (1, 0.1 + 0.2), (2, 0.3))",
        "SELECT column1, column2 FROM (VALUES (2, 0.3), (1, 0.3))",
        True,
    ),
    (B, "VALUES (1, 'a'), (1.0, 'b')", "VALUES (1, 'b'), (1, 'a')", True),
    (B, "VALUES (0.3), (0.3), (0.1)", "VALUES (0.1 + 0.2), (0.1), (0.1)", False),
    (B, "VALUES (0.3), (0.3), (0.1)", "VALUES (0.1), (0.1 + 0.2), (0.30000000001)", True),
    (
        B,
        "SELECT sum(price) FROM books",
        "SELECT sum(price) FROM (SELECT price FROM books ORDER BY price DESC)",
        True,
    ),
    # --- text: exact, case, spaces, unicode normalisation ---
    (B, "SELECT 'abc'", "SELECT 'abc '", False),
    (B, "SELECT 'abc'", "SELECT '  abc'", False),
    (B, "SELECT 'abc'", "SELECT 'ABC'", False),
    (B, "SELECT lower('ABC')", "SELECT 'abc'", True),
    (B, "SELECT name FROM authors", "SELECT name || ' ' FROM authors", False),
    (B, "SELECT rtrim(name || '  ') FROM authors", "SELECT name FROM authors", True),
    (B, "SELECT upper(name) FROM authors", "SELECT name FROM authors", False),
    (B, "SELECT char(10)", "SELECT char(13, 10)", False),
    (B, "SELECT 'é'", "SELECT 'e\u0301'", False),
    (B, "SELECT name FROM publishers WHERE publisher_id = 2", "SELECT 'Éditions du Nord'", True),
    (B, "SELECT name FROM publishers WHERE publisher_id = 2", "SELECT 'E\u0301ditions du Nord'", False),
    (B, "SELECT name FROM authors WHERE name LIKE 'Élodie D%'", "SELECT 'Élodie Dubois'", True),
    (B, "SELECT name FROM authors WHERE name LIKE 'Élodie%'", "SELECT 'Élodie Dubois'", False),
    (B, "SELECT 'ß'", "SELECT 'ss'", False),
    (
        W,
        "SELECT code FROM countries WHERE code LIKE 'b%'",
        "SELECT code FROM countries WHERE code GLOB 'b*'",
        False,
    ),
    (
        U,
        "SELECT count(*) FROM students WHERE home_country = 'Türkiye'",
        "SELECT count(*) FROM students WHERE home_country = 'TÜRKIYE'",
        False,
    ),
    # --- recursive CTEs that terminate ---
    (
        B,
        "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 10) SELECT n FROM c",
        "SELECT column1 FROM (VALUES (10), (9), (8), (7), (6), (5), (4), (3), (2), (1))",
        True,
    ),
    (
        B,
        "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 10) SELECT sum(n) FROM c",
        "SELECT 55.0",
        True,
    ),
    (
        B,
        "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 10) SELECT sum(n) FROM c",
        "SELECT '55'",
        False,
    ),
    (
        B,
        "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c ORDER BY 1 LIMIT 5) SELECT n FROM c",
        "SELECT column1 FROM (VALUES (5), (4), (3), (2), (1))",
        True,
    ),
]

_LIMITS = SqlLimits(timeout=1.0, max_rows=10_000)


@pytest.fixture(scope="module")
def guard():
    g = SqlGuard(_LIMITS)
    yield g
    g.close()


def _equivalent(guard: SqlGuard, db: str, gold: str, predicted: str) -> bool:
    path = DATABASES / f"{db}.sqlite"
    return compare_results(
        guard.execute(path, gold), guard.execute(path, predicted), outer_order_by(gold)
    ).equivalent


def test_the_set_is_large_and_balanced():
    assert len(PAIRS) >= 150
    positives = sum(1 for *_, label in PAIRS if label)
    assert 0.3 < positives / len(PAIRS) < 0.7


@pytest.mark.parametrize(
    ("db", "gold", "predicted", "expected"), PAIRS, ids=[f"pair{i:03d}" for i in range(len(PAIRS))]
)
def test_pair(guard, db, gold, predicted, expected):
    assert _equivalent(guard, db, gold, predicted) is expected


def test_accuracy_and_databases_untouched(guard):
    before = {p.name: hash_file(p) for p in DATABASES.glob("*.sqlite")}
    files = sorted(p.name for p in DATABASES.iterdir())
    correct = sum(_equivalent(guard, db, g, p) is label for db, g, p, label in PAIRS)
    assert correct / len(PAIRS) == 1.0
    assert {p.name: hash_file(p) for p in DATABASES.glob("*.sqlite")} == before
    assert sorted(p.name for p in DATABASES.iterdir()) == files
