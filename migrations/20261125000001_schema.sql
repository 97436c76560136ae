-- orderflow schema (SPEC §4). The rules live in the database too: money is
-- NUMERIC(12,2) and positive, stock is never negative, one reservation per
-- order line, one capture per order, one notification of each kind per order.

CREATE FUNCTION set_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;

-- Identifiers follow SPEC §2 (1–64 of A-Z a-z 0-9 _ . -), checked where they
-- are first written; money is NUMERIC(12,2) and positive.

CREATE TABLE products (
    product_id  TEXT PRIMARY KEY CHECK (product_id ~ '^[A-Za-z0-9_.-]{1,64}$'),
    name        TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    unit_price  NUMERIC(12, 2) NOT NULL CHECK (unit_price > 0),
    stock       INTEGER NOT NULL CONSTRAINT stock_never_negative CHECK (stock >= 0),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE orders (
    order_id        TEXT PRIMARY KEY CHECK (order_id ~ '^[A-Za-z0-9_.-]{1,64}$'),
    customer_id     TEXT NOT NULL CHECK (customer_id ~ '^[A-Za-z0-9_.-]{1,64}$'),
    customer_email  TEXT,
    payment_method  TEXT NOT NULL CHECK (payment_method IN
                        ('card', 'card_declined', 'card_insufficient_funds', 'card_flaky', 'card_unavailable')),
    total_amount    NUMERIC(12, 2) NOT NULL CHECK (total_amount > 0),
    currency        CHAR(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    status          TEXT NOT NULL CHECK (status IN
                        ('PENDING', 'CREATED', 'INVENTORY_RESERVED', 'PAID', 'COMPLETED', 'CANCELLED', 'FAILED')),
    step            TEXT CHECK (step IN
                        ('create_order', 'reserve_inventory', 'process_payment', 'send_notification')),
    failure_code    TEXT CHECK (failure_code IN
                        ('INVALID_ORDER', 'UNKNOWN_PRODUCT', 'PRICE_MISMATCH', 'OUT_OF_STOCK',
                         'PAYMENT_DECLINED', 'PAYMENT_UNAVAILABLE', 'INTERNAL')),
    failure_message TEXT,
    cancel_reason   TEXT,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT failed_orders_have_a_code CHECK ((status = 'FAILED') = (failure_code IS NOT NULL))
);
-- `order list`: newest first, optionally by status or customer.
CREATE INDEX orders_created_at_idx ON orders (created_at DESC);
CREATE INDEX orders_status_created_at_idx ON orders (status, created_at DESC);
CREATE INDEX orders_customer_created_at_idx ON orders (customer_id, created_at DESC);

CREATE TABLE order_items (
    order_id    TEXT NOT NULL REFERENCES orders (order_id) ON DELETE CASCADE,
    line_no     SMALLINT NOT NULL CHECK (line_no BETWEEN 0 AND 99),
    -- No foreign key to products: an unknown product is a business failure
    -- (UNKNOWN_PRODUCT) found when reserving, and the order keeps its record.
    product_id  TEXT NOT NULL CHECK (product_id ~ '^[A-Za-z0-9_.-]{1,64}$'),
    quantity    INTEGER NOT NULL CHECK (quantity BETWEEN 1 AND 10000),
    unit_price  NUMERIC(12, 2) NOT NULL CHECK (unit_price > 0),
    PRIMARY KEY (order_id, line_no),
    CONSTRAINT one_line_per_product UNIQUE (order_id, product_id)
);
CREATE INDEX order_items_product_id_idx ON order_items (product_id);

-- Stock held for an order line; released on compensation. The primary key is
-- the rule "one reservation per order line".
CREATE TABLE inventory_reservations (
    order_id     TEXT NOT NULL,
    line_no      SMALLINT NOT NULL,
    product_id   TEXT NOT NULL REFERENCES products (product_id),
    quantity     INTEGER NOT NULL CHECK (quantity > 0),
    status       TEXT NOT NULL DEFAULT 'RESERVED' CHECK (status IN ('RESERVED', 'RELEASED')),
    released_at  TIMESTAMPTZ,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (order_id, line_no),
    FOREIGN KEY (order_id, line_no) REFERENCES order_items (order_id, line_no) ON DELETE CASCADE,
    CONSTRAINT released_has_time CHECK ((status = 'RELEASED') = (released_at IS NOT NULL))
);
CREATE INDEX inventory_reservations_product_id_idx ON inventory_reservations (product_id);

-- The payments ledger: every gateway outcome for an order, keyed by an
-- idempotency key so a retried capture is recognised, with at most one
-- capture per order (a refund turns that capture REFUNDED, never a second row).
CREATE TABLE payments (
    payment_id       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id         TEXT NOT NULL REFERENCES orders (order_id) ON DELETE CASCADE,
    idempotency_key  TEXT NOT NULL UNIQUE,
    amount           NUMERIC(12, 2) NOT NULL CHECK (amount > 0),
    currency         CHAR(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    payment_method   TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('CAPTURED', 'DECLINED', 'REFUNDED')),
    gateway_ref      TEXT,
    decline_reason   TEXT,
    attempt          INTEGER NOT NULL DEFAULT 1 CHECK (attempt >= 1),
    refunded_at      TIMESTAMPTZ,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT refunded_has_time CHECK ((status = 'REFUNDED') = (refunded_at IS NOT NULL))
);
CREATE UNIQUE INDEX payments_one_capture_per_order
    ON payments (order_id) WHERE status IN ('CAPTURED', 'REFUNDED');
CREATE INDEX payments_order_id_idx ON payments (order_id);

CREATE TABLE notifications (
    notification_id  BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id         TEXT NOT NULL REFERENCES orders (order_id) ON DELETE CASCADE,
    kind             TEXT NOT NULL CHECK (kind IN ('CONFIRMATION', 'CANCELLATION', 'FAILURE')),
    recipient        TEXT,
    status           TEXT NOT NULL DEFAULT 'PENDING' CHECK (status IN ('PENDING', 'SENT', 'FAILED')),
    attempts         INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_error       TEXT,
    sent_at          TIMESTAMPTZ,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT one_notification_per_kind UNIQUE (order_id, kind)
);
CREATE INDEX notifications_status_idx ON notifications (status) WHERE status <> 'SENT';

CREATE TRIGGER products_updated_at BEFORE UPDATE ON products
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER orders_updated_at BEFORE UPDATE ON orders
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER inventory_reservations_updated_at BEFORE UPDATE ON inventory_reservations
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER payments_updated_at BEFORE UPDATE ON payments
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER notifications_updated_at BEFORE UPDATE ON notifications
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
