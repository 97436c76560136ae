-- `order list` pages by keyset: newest first, ties broken by order ID, both
-- descending, so that `--after ID` is one index range scan however deep the
-- page (a million rows: see DOCS.md § Benchmark). The listing by customer
-- has its index in the same order. By status there is still no index (see
-- 20261125000003: status changes stay HOT updates); `--status` walks the
-- creation-time index and filters, which is quick for any status that is
-- not rare, and reads the whole index for one that no order has.
DROP INDEX IF EXISTS orders_created_at_idx;
DROP INDEX IF EXISTS orders_customer_created_at_idx;
CREATE INDEX orders_created_at_idx ON orders (created_at DESC, order_id DESC);
CREATE INDEX orders_customer_created_at_idx ON orders (customer_id, created_at DESC, order_id DESC);
