-- Reserving and releasing an order's stock, each in one call.
--
-- Each is several statements under row locks: the order row (which
-- serialises this order's reserve and release), then the order's products in
-- ID order (so concurrent orders cannot deadlock or oversell). Run from the
-- worker, every statement was a round trip, and the products stayed locked
-- across them: under a popular product, orders queued on those round trips.
-- As a function it is one round trip, and the locks are held only while
-- PostgreSQL works.
--
-- The functions read the lines from `order_items`, as the create step
-- recorded them. In a VOLATILE function each statement takes a new snapshot
-- in READ COMMITTED, so what follows a lock sees what a concurrent
-- transaction committed while we waited for it.

-- Takes stock for every line of the order, or for none. One row:
--   outcome RESERVED (lines = how many), ALREADY (reserved before),
--   RELEASED (reserved and released before: not again), NOT_RECORDED (no
--   order row yet), or the first line that fails, by product ID:
--   UNKNOWN_PRODUCT, PRICE_MISMATCH or OUT_OF_STOCK, with that line and
--   the catalog's price and stock.
CREATE FUNCTION reserve_inventory(p_order_id TEXT)
RETURNS TABLE (
    outcome        TEXT,
    lines          INTEGER,
    line_product   TEXT,
    line_quantity  INTEGER,
    line_price     NUMERIC(12, 2),
    catalog_price  NUMERIC(12, 2),
    catalog_stock  INTEGER
)
LANGUAGE plpgsql AS $$
DECLARE
    held TEXT[];
    line RECORD;
BEGIN
    PERFORM 1 FROM orders o WHERE o.order_id = p_order_id FOR UPDATE;
    IF NOT FOUND THEN
        outcome := 'NOT_RECORDED';
        RETURN NEXT;
        RETURN;
    END IF;

    SELECT array_agg(r.status) INTO held
      FROM inventory_reservations r WHERE r.order_id = p_order_id;
    IF held IS NOT NULL THEN
        outcome := CASE WHEN held <@ ARRAY['RESERVED'] THEN 'ALREADY' ELSE 'RELEASED' END;
        RETURN NEXT;
        RETURN;
    END IF;

    PERFORM 1 FROM products p
      WHERE p.product_id IN (SELECT i.product_id FROM order_items i WHERE i.order_id = p_order_id)
      ORDER BY p.product_id
        FOR UPDATE;

    lines := 0;
    FOR line IN
        SELECT i.product_id, i.quantity, i.unit_price, p.unit_price AS listed_price, p.stock
          FROM order_items i LEFT JOIN products p ON p.product_id = i.product_id
         WHERE i.order_id = p_order_id
         ORDER BY i.product_id
    LOOP
        outcome := CASE
            WHEN line.listed_price IS NULL THEN 'UNKNOWN_PRODUCT'
            WHEN line.listed_price <> line.unit_price THEN 'PRICE_MISMATCH'
            WHEN line.stock < line.quantity THEN 'OUT_OF_STOCK'
        END;
        IF outcome IS NOT NULL THEN
            line_product := line.product_id;
            line_quantity := line.quantity;
            line_price := line.unit_price;
            catalog_price := line.listed_price;
            catalog_stock := line.stock;
            RETURN NEXT;
            RETURN;
        END IF;
        lines := lines + 1;
    END LOOP;

    UPDATE products p SET stock = p.stock - i.quantity
      FROM order_items i
     WHERE i.order_id = p_order_id AND p.product_id = i.product_id;
    INSERT INTO inventory_reservations (order_id, line_no, product_id, quantity)
    SELECT i.order_id, i.line_no, i.product_id, i.quantity
      FROM order_items i WHERE i.order_id = p_order_id;
    UPDATE orders o SET status = 'INVENTORY_RESERVED', step = 'reserve_inventory'
     WHERE o.order_id = p_order_id;
    outcome := 'RESERVED';
    RETURN NEXT;
END;
$$;

-- Puts back whatever the order still holds; returns how many lines it
-- released (0: nothing held, or released before).
CREATE FUNCTION release_inventory(p_order_id TEXT)
RETURNS INTEGER
LANGUAGE plpgsql AS $$
DECLARE
    released INTEGER;
BEGIN
    PERFORM 1 FROM orders o WHERE o.order_id = p_order_id FOR UPDATE;
    PERFORM 1 FROM products p
      WHERE p.product_id IN (SELECT r.product_id FROM inventory_reservations r
                              WHERE r.order_id = p_order_id AND r.status = 'RESERVED')
      ORDER BY p.product_id
        FOR UPDATE;
    WITH freed AS (
        UPDATE inventory_reservations r SET status = 'RELEASED', released_at = now()
         WHERE r.order_id = p_order_id AND r.status = 'RESERVED'
        RETURNING r.product_id, r.quantity)
    UPDATE products p SET stock = p.stock + f.quantity
      FROM freed f WHERE p.product_id = f.product_id;
    GET DIAGNOSTICS released = ROW_COUNT;
    RETURN released;
END;
$$;
