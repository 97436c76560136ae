-- `order resubmit`: a FAILED order started again as a new order, linked
-- both ways. One resubmission per order: the link is written before the
-- new order starts, so running the command twice starts it once.
CREATE TABLE resubmissions (
    order_id        identifier PRIMARY KEY REFERENCES orders (order_id) ON DELETE CASCADE,
    resubmitted_as  identifier NOT NULL UNIQUE,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
