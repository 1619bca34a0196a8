"""Build the sample SQLite databases of the text-to-SQL pipelines, deterministically.

    python scripts/build_sample_dbs.py            # (re)writes the committed files
    python scripts/build_sample_dbs.py --out DIR  # writes DIR/<db_id>.sqlite instead

Three small but realistic databases (hundreds of rows each, NULLs, ties, non-ASCII text,
foreign keys): `bookstore`, `university` and `world`. Every value comes from a seeded random
generator, so the same SQLite version writes the same bytes; the tests rebuild them and compare
their contents with the committed files. The generate pipeline keeps them flat
(`databases/<db_id>.sqlite`), the refine pipeline in the Spider/BIRD layout
(`databases/<db_id>/<db_id>.sqlite`).
"""

from __future__ import annotations

import argparse
import random
import sqlite3
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FLAT = REPO / "pipelines" / "text2sql_generate" / "databases"
NESTED = REPO / "pipelines" / "text2sql_refine" / "databases"

FIRST = [
    "Ana", "Björn", "Chloé", "Dmitri", "Élodie", "Fatima", "Günter", "Hiro", "Inès", "Jürgen", "Kenji",
    "Łukasz", "María", "Noémie", "Øyvind", "Paweł", "Renée", "Søren", "Tomás", "Zoë", "Aisha", "Ben",
    "Carla", "David", "Emma", "Farid", "Grace", "Hugo", "Ivan", "Julia", "Karim", "Lena", "Marco", "Nora",
    "Omar", "Priya", "Quentin", "Rosa", "Sven", "Tara", "Uma", "Victor", "Wen", "Yusuf",
]  # fmt: skip
LAST = [
    "Álvarez", "Brandt", "Čapek", "Dubois", "Eriksson", "Fernández", "García", "Håkansson", "Ibáñez",
    "Jensen", "Kowalski", "López", "Müller", "Nakamura", "O'Brien", "Petrović", "Quintero", "Rossi",
    "Schäfer", "Tanaka", "Nguyễn", "Weiß", "Yılmaz", "Zhou", "Smith", "Johnson", "Brown", "Lee", "Singh",
    "Kim", "Silva", "Novak",
]  # fmt: skip


def person(rng: random.Random) -> str:
    return f"{rng.choice(FIRST)} {rng.choice(LAST)}"


def maybe(rng: random.Random, value, p_null: float):
    return None if rng.random() < p_null else value


def date(rng: random.Random, first_year: int, last_year: int) -> str:
    return f"{rng.randint(first_year, last_year)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"


# bookstore ------------------------------------------------------------------------------------
BOOKSTORE_DDL = """
CREATE TABLE authors (
  author_id INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  country TEXT,
  birth_year INTEGER
);
CREATE TABLE publishers (
  publisher_id INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  city TEXT,
  founded INTEGER
);
CREATE TABLE books (
  book_id INTEGER PRIMARY KEY,
  title TEXT NOT NULL,
  author_id INTEGER NOT NULL REFERENCES authors(author_id),
  publisher_id INTEGER REFERENCES publishers(publisher_id),
  genre TEXT NOT NULL,
  published_year INTEGER,
  price REAL NOT NULL,
  pages INTEGER,
  isbn TEXT UNIQUE
);
CREATE TABLE customers (
  customer_id INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  email TEXT,
  city TEXT NOT NULL,
  country TEXT NOT NULL,
  joined TEXT NOT NULL
);
CREATE TABLE orders (
  order_id INTEGER PRIMARY KEY,
  customer_id INTEGER NOT NULL REFERENCES customers(customer_id),
  order_date TEXT NOT NULL,
  status TEXT NOT NULL
);
CREATE TABLE order_items (
  order_id INTEGER NOT NULL REFERENCES orders(order_id),
  book_id INTEGER NOT NULL REFERENCES books(book_id),
  quantity INTEGER NOT NULL,
  unit_price REAL NOT NULL,
  PRIMARY KEY (order_id, book_id)
);
"""
COUNTRIES = [
    "Portugal",
    "Spain",
    "France",
    "Germany",
    "Japan",
    "Poland",
    "Norway",
    "Brazil",
    "Türkiye",
    "Việt Nam",
]
CITIES = {
    "Portugal": ["Lisboa", "Porto"],
    "Spain": ["Madrid", "Sevilla", "A Coruña"],
    "France": ["Paris", "Besançon"],
    "Germany": ["München", "Köln", "Berlin"],
    "Japan": ["Tōkyō", "Ōsaka"],
    "Poland": ["Kraków", "Łódź"],
    "Norway": ["Tromsø", "Oslo"],
    "Brazil": ["São Paulo", "Belém"],
    "Türkiye": ["İstanbul", "İzmir"],
    "Việt Nam": ["Hà Nội", "Đà Nẵng"],
}
GENRES = ["fiction", "mystery", "science", "history", "poetry", "fantasy", "biography"]
WORDS = [
    "Silent", "River", "Garden", "Night", "Shadows", "Light", "Winter", "Orchard", "Mirror", "Atlas",
    "Café", "Noël", "Über", "Cielo", "Sōzō", "Île", "Storm", "Letters", "Salt", "Ember",
]  # fmt: skip
PRICES = [7.5, 9.99, 9.99, 12.0, 14.99, 14.99, 19.95, 24.0, 29.99, 35.5]
STATUSES = ["shipped", "shipped", "shipped", "delivered", "pending", "cancelled"]


def bookstore(conn: sqlite3.Connection, rng: random.Random) -> None:
    conn.executescript(BOOKSTORE_DDL)
    authors = []
    for i in range(1, 46):
        authors.append(
            (
                i,
                person(rng),
                maybe(rng, rng.choice(COUNTRIES), 0.1),
                maybe(rng, rng.randint(1920, 1995), 0.15),
            )
        )
    conn.executemany("INSERT INTO authors VALUES (?, ?, ?, ?)", authors)
    publisher_names = [
        "Aurora Press",
        "Éditions du Nord",
        "Kōdan House",
        "Blue Finch",
        "Verlag Sonne",
        "Casa Azul",
    ]
    publishers = []
    for i, name in enumerate(publisher_names, 1):
        country = rng.choice(COUNTRIES)
        publishers.append((i, name, maybe(rng, rng.choice(CITIES[country]), 0.2), rng.randint(1850, 2010)))
    conn.executemany("INSERT INTO publishers VALUES (?, ?, ?, ?)", publishers)
    books = []
    for i in range(1, 161):
        title = " ".join(rng.sample(WORDS, rng.randint(1, 3)))
        if rng.random() < 0.1:
            title = "The " + title
        books.append(
            (
                i,
                title,
                rng.randint(1, len(authors)),
                maybe(rng, rng.randint(1, len(publishers)), 0.1),
                rng.choice(GENRES),
                maybe(rng, rng.randint(1950, 2023), 0.05),
                rng.choice(PRICES),
                maybe(rng, rng.randint(80, 900), 0.12),
                maybe(
                    rng,
                    f"978-{rng.randint(0, 9)}-{rng.randint(10000, 99999)}-{i:03d}-{rng.randint(0, 9)}",
                    0.15,
                ),
            )
        )
    conn.executemany("INSERT INTO books VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", books)
    customers = []
    for i in range(1, 91):
        name = person(rng)
        country = rng.choice(COUNTRIES)
        email = maybe(rng, name.lower().replace(" ", ".").replace("'", "") + "@example.com", 0.2)
        customers.append((i, name, email, rng.choice(CITIES[country]), country, date(rng, 2015, 2023)))
    conn.executemany("INSERT INTO customers VALUES (?, ?, ?, ?, ?, ?)", customers)
    orders, items = [], []
    for i in range(1, 221):
        orders.append((i, rng.randint(1, len(customers)), date(rng, 2019, 2024), rng.choice(STATUSES)))
        for book_id in sorted(rng.sample(range(1, len(books) + 1), rng.randint(1, 4))):
            price = books[book_id - 1][6]
            discounted = round(price * rng.choice([1.0, 1.0, 1.0, 0.9]), 2)
            items.append((i, book_id, rng.choice([1, 1, 1, 2, 3]), discounted))
    conn.executemany("INSERT INTO orders VALUES (?, ?, ?, ?)", orders)
    conn.executemany("INSERT INTO order_items VALUES (?, ?, ?, ?)", items)


# university -----------------------------------------------------------------------------------
UNIVERSITY_DDL = """
CREATE TABLE departments (
  dept_id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  building TEXT,
  budget REAL
);
CREATE TABLE instructors (
  instructor_id INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  dept_id INTEGER NOT NULL REFERENCES departments(dept_id),
  salary INTEGER NOT NULL,
  hire_year INTEGER NOT NULL
);
CREATE TABLE students (
  student_id INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  dept_id INTEGER REFERENCES departments(dept_id),
  enrollment_year INTEGER NOT NULL,
  gpa REAL,
  home_country TEXT
);
CREATE TABLE courses (
  course_id TEXT PRIMARY KEY,
  title TEXT NOT NULL,
  dept_id INTEGER NOT NULL REFERENCES departments(dept_id),
  credits INTEGER NOT NULL,
  instructor_id INTEGER REFERENCES instructors(instructor_id)
);
CREATE TABLE enrollments (
  student_id INTEGER NOT NULL REFERENCES students(student_id),
  course_id TEXT NOT NULL REFERENCES courses(course_id),
  semester TEXT NOT NULL,
  grade TEXT,
  score REAL,
  PRIMARY KEY (student_id, course_id, semester)
);
"""
DEPARTMENTS = [
    ("Computer Science", "CS", "Turing Hall"),
    ("Mathematics", "MA", "Noether Building"),
    ("Physics", "PH", "Curie Hall"),
    ("History", "HI", None),
    ("Linguistics", "LI", "Saussure Haus"),
    ("Economics", "EC", "Keynes Centre"),
]
COURSE_TOPICS = {
    "CS": ["Programming I", "Data Structures", "Databases", "Operating Systems", "Machine Learning"],
    "MA": ["Calculus", "Linear Algebra", "Probability", "Number Theory"],
    "PH": ["Mechanics", "Electromagnetism", "Quantum Physics"],
    "HI": ["Ancient Rome", "Medieval Europe", "Modern Japan"],
    "LI": ["Phonetics", "Syntax", "Sémantique"],
    "EC": ["Microeconomics", "Macroeconomics", "Econometrics"],
}
GRADES = [
    ("A", 93),
    ("A-", 90),
    ("B+", 87),
    ("B", 83),
    ("B-", 80),
    ("C+", 77),
    ("C", 73),
    ("D", 65),
    ("F", 50),
]


def university(conn: sqlite3.Connection, rng: random.Random) -> None:
    conn.executescript(UNIVERSITY_DDL)
    departments = [
        (i, name, building, maybe(rng, float(rng.randint(5, 40) * 25000), 0.15))
        for i, (name, _, building) in enumerate(DEPARTMENTS, 1)
    ]
    conn.executemany("INSERT INTO departments VALUES (?, ?, ?, ?)", departments)
    instructors = []
    for i in range(1, 31):
        salary = rng.choice([62000, 70000, 70000, 85000, 91000, 91000, 104000, 120000])
        instructors.append(
            (i, person(rng), rng.randint(1, len(departments)), salary, rng.randint(1990, 2022))
        )
    conn.executemany("INSERT INTO instructors VALUES (?, ?, ?, ?, ?)", instructors)
    students = []
    for i in range(1, 151):
        gpa = maybe(rng, round(rng.uniform(1.8, 4.0), 2), 0.1)
        students.append(
            (
                i,
                person(rng),
                maybe(rng, rng.randint(1, len(departments)), 0.1),
                rng.randint(2017, 2023),
                gpa,
                maybe(rng, rng.choice(COUNTRIES), 0.1),
            )
        )
    conn.executemany("INSERT INTO students VALUES (?, ?, ?, ?, ?, ?)", students)
    courses = []
    for dept_id, (_, code, _) in enumerate(DEPARTMENTS, 1):
        teachers = [t[0] for t in instructors if t[2] == dept_id] or [None]
        for k, topic in enumerate(COURSE_TOPICS[code], 1):
            courses.append(
                (f"{code}{100 * k + 1}", topic, dept_id, rng.choice([3, 4, 4, 6]), rng.choice(teachers))
            )
    conn.executemany("INSERT INTO courses VALUES (?, ?, ?, ?, ?)", courses)
    enrollments = []
    semesters = ["2022-fall", "2023-spring", "2023-fall", "2024-spring"]
    for student in students:
        for course in rng.sample(courses, rng.randint(1, 5)):
            semester = rng.choice(semesters)
            if semester == "2024-spring" and rng.random() < 0.7:  # in progress: no grade yet
                grade, score = None, None
            else:
                grade, base = rng.choice(GRADES)
                score = round(base + rng.uniform(-2.5, 2.5), 1)
            enrollments.append((student[0], course[0], semester, grade, score))
    conn.executemany("INSERT INTO enrollments VALUES (?, ?, ?, ?, ?)", enrollments)


# world ----------------------------------------------------------------------------------------
WORLD_DDL = """
CREATE TABLE countries (
  code TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  continent TEXT NOT NULL,
  population INTEGER NOT NULL,
  area_km2 REAL NOT NULL,
  gdp_musd REAL,
  independence_year INTEGER
);
CREATE TABLE cities (
  city_id INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  country_code TEXT NOT NULL REFERENCES countries(code),
  population INTEGER,
  is_capital INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE languages (
  country_code TEXT NOT NULL REFERENCES countries(code),
  language TEXT NOT NULL,
  is_official INTEGER NOT NULL,
  percentage REAL,
  PRIMARY KEY (country_code, language)
);
"""
# code, name, continent, capital, other big cities, languages (rough figures: sample data)
WORLD = [
    ("BRA", "Brazil", "South America", "Brasília", ["São Paulo", "Rio de Janeiro", "Belém"], ["Portuguese"]),
    ("COL", "Colombia", "South America", "Bogotá", ["Medellín", "Cali"], ["Spanish"]),
    ("MEX", "Mexico", "North America", "Ciudad de México", ["Guadalajara", "Monterrey", "Mérida"], ["Spanish", "Nahuatl"]),
    ("CAN", "Canada", "North America", "Ottawa", ["Toronto", "Montréal", "Québec"], ["English", "French"]),
    ("ISL", "Iceland", "Europe", "Reykjavík", ["Akureyri"], ["Icelandic"]),
    ("CHE", "Switzerland", "Europe", "Bern", ["Zürich", "Genève", "Lugano"], ["German", "French", "Italian", "Romansh"]),
    ("POL", "Poland", "Europe", "Warszawa", ["Kraków", "Łódź", "Gdańsk"], ["Polish"]),
    ("SWE", "Sweden", "Europe", "Stockholm", ["Göteborg", "Malmö"], ["Swedish", "Finnish"]),
    ("DEU", "Germany", "Europe", "Berlin", ["München", "Köln", "Düsseldorf"], ["German"]),
    ("FRA", "France", "Europe", "Paris", ["Marseille", "Lyon", "Besançon"], ["French", "Breton"]),
    ("ESP", "Spain", "Europe", "Madrid", ["Barcelona", "Sevilla", "Córdoba"], ["Spanish", "Catalan", "Basque", "Galician"]),
    ("SRB", "Serbia", "Europe", "Beograd", ["Novi Sad", "Niš"], ["Serbian", "Hungarian"]),
    ("TUR", "Türkiye", "Asia", "Ankara", ["İstanbul", "İzmir"], ["Turkish", "Kurdish"]),
    ("JPN", "Japan", "Asia", "Tōkyō", ["Ōsaka", "Kyōto", "Sapporo"], ["Japanese"]),
    ("CHN", "China", "Asia", "北京", ["上海", "广州", "深圳"], ["Mandarin", "Cantonese"]),
    ("VNM", "Việt Nam", "Asia", "Hà Nội", ["Thành phố Hồ Chí Minh", "Đà Nẵng"], ["Vietnamese"]),
    ("IND", "India", "Asia", "New Delhi", ["Mumbai", "Bengaluru", "Kolkata"], ["Hindi", "English", "Bengali", "Tamil"]),
    ("EGY", "Egypt", "Africa", "القاهرة", ["الإسكندرية"], ["Arabic"]),
    ("KEN", "Kenya", "Africa", "Nairobi", ["Mombasa", "Kisumu"], ["Swahili", "English"]),
    ("SEN", "Senegal", "Africa", "Dakar", ["Thiès"], ["French", "Wolof"]),
    ("ZAF", "South Africa", "Africa", "Pretoria", ["Johannesburg", "Cape Town", "Durban"], ["Zulu", "Xhosa", "Afrikaans", "English"]),
    ("AUS", "Australia", "Oceania", "Canberra", ["Sydney", "Melbourne", "Perth"], ["English"]),
    ("NZL", "New Zealand", "Oceania", "Wellington", ["Auckland", "Ōtautahi"], ["English", "Māori"]),
    ("ATA", "Antarctica", "Antarctica", None, [], []),
]  # fmt: skip
SYLLABLES = ["ka", "lo", "mé", "ri", "tsu", "vå", "nø", "ze", "pa", "dü", "ko", "sa", "ñe", "ba", "ły"]


def world(conn: sqlite3.Connection, rng: random.Random) -> None:
    conn.executescript(WORLD_DDL)
    city_id = 0
    for code, name, continent, capital, others, languages in WORLD:
        population = 0 if capital is None else rng.randint(300, 140000) * 10000
        area = round(rng.uniform(10_000, 9_000_000), 1)
        gdp = maybe(rng, round(population / 1000 * rng.uniform(1, 60), 1), 0.12) if population else None
        independence = maybe(rng, rng.randint(1200, 1991), 0.3) if capital else None
        conn.execute(
            "INSERT INTO countries VALUES (?, ?, ?, ?, ?, ?, ?)",
            (code, name, continent, population, area, gdp, independence),
        )
        names = ([capital] if capital else []) + others
        towns = rng.randint(2, 6) if capital else 0
        for _ in range(towns):
            names.append("".join(rng.sample(SYLLABLES, rng.randint(2, 3))).capitalize())
        for k, city in enumerate(names):
            city_id += 1
            size = maybe(rng, rng.choice([25, 50, 50, 120, 300, 800]) * 1000 * rng.randint(1, 12), 0.08)
            conn.execute(
                "INSERT INTO cities VALUES (?, ?, ?, ?, ?)", (city_id, city, code, size, 1 if k == 0 else 0)
            )
        shares = [rng.randint(1, 90) for _ in languages]
        for k, language in enumerate(languages):
            percentage = maybe(rng, round(100 * shares[k] / sum(shares), 1), 0.1)
            official = 1 if k == 0 or rng.random() < 0.4 else 0
            conn.execute("INSERT INTO languages VALUES (?, ?, ?, ?)", (code, language, official, percentage))


BUILDERS: dict[str, Callable[[sqlite3.Connection, random.Random], None]] = {
    "bookstore": bookstore,
    "university": university,
    "world": world,
}
SEEDS = {"bookstore": 11, "university": 23, "world": 37}


def build(db_id: str, path: Path) -> Path:
    """Write database `db_id` to `path` (replacing it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    conn = sqlite3.connect(tmp)
    try:
        conn.execute("PRAGMA page_size = 4096")
        conn.execute("PRAGMA foreign_keys = ON")
        with conn:
            BUILDERS[db_id](conn, random.Random(SEEDS[db_id]))
        if conn.execute("PRAGMA foreign_key_check").fetchall():
            raise RuntimeError(f"{db_id}: foreign key violations")
        conn.execute("VACUUM")
    finally:
        conn.close()
    tmp.replace(path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="write flat <db_id>.sqlite files here instead")
    args = parser.parse_args()
    if args.out:
        for db_id in BUILDERS:
            print(build(db_id, args.out / f"{db_id}.sqlite"))
        return
    for db_id in BUILDERS:
        print(build(db_id, FLAT / f"{db_id}.sqlite"))
    for db_id in ("bookstore", "world"):
        print(build(db_id, NESTED / db_id / f"{db_id}.sqlite"))


if __name__ == "__main__":
    main()
