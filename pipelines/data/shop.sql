-- The source table pipelines/postgres_orders.json reads (public.orders,
-- incremental on id), with a few rows: one without a valid e-mail and one
-- with a zero amount, which the example's quality gate rejects.
CREATE TABLE orders (
    id serial PRIMARY KEY,
    email text,
    amount numeric(10,2),
    country text,
    created_at timestamptz DEFAULT now()
);
INSERT INTO orders (email, amount, country) VALUES
    ('a@example.com', 10, 'DE'),
    ('b@example.com', 0, 'FR'),
    ('not-an-email', 5, 'US'),
    ('c@example.com', 7.5, NULL);
