-- Nothing from outside is trusted (SPEC §7): the amount charged is what the
-- catalog says the reserved items cost, and the database itself refuses an
-- order whose total is not the sum of its lines, and a capture that is not
-- its order's total.

-- A reservation keeps the catalog price it was taken at; the capture
-- charges Σ reserved quantity × that price.
ALTER TABLE inventory_reservations ADD COLUMN unit_price positive_money;
UPDATE inventory_reservations r SET unit_price = i.unit_price
  FROM order_items i
 WHERE i.order_id = r.order_id AND i.line_no = r.line_no;
ALTER TABLE inventory_reservations ALTER COLUMN unit_price SET NOT NULL;

-- An order's total is the sum of its lines: checked when the transaction
-- that writes either commits (so the order and its lines may be written in
-- any order within it).
CREATE FUNCTION check_order_total() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    id TEXT;
    total NUMERIC;
    lines NUMERIC;
BEGIN
    id := CASE WHEN TG_OP = 'DELETE' THEN OLD.order_id ELSE NEW.order_id END;
    SELECT o.total_amount INTO total FROM orders o WHERE o.order_id = id;
    IF NOT FOUND THEN
        RETURN NULL;  -- deleted, with its lines
    END IF;
    SELECT sum(i.quantity * i.unit_price) INTO lines FROM order_items i WHERE i.order_id = id;
    IF lines IS DISTINCT FROM total THEN
        RAISE EXCEPTION 'order %: its total % is not the sum of its lines (%)',
                id, total, COALESCE(lines::text, 'it has none')
            USING ERRCODE = 'check_violation',
                  CONSTRAINT = 'order_total_is_the_sum_of_its_lines';
    END IF;
    RETURN NULL;
END;
$$;

CREATE CONSTRAINT TRIGGER order_total_is_the_sum_of_its_lines
    AFTER INSERT OR UPDATE OF total_amount ON orders
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION check_order_total();
CREATE CONSTRAINT TRIGGER order_lines_add_up_to_its_total
    AFTER INSERT OR UPDATE OR DELETE ON order_items
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION check_order_total();

-- A capture is its order's total, to the cent.
CREATE FUNCTION check_capture_amount() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    total NUMERIC;
BEGIN
    SELECT o.total_amount INTO total FROM orders o WHERE o.order_id = NEW.order_id;
    IF NEW.amount IS DISTINCT FROM total THEN
        RAISE EXCEPTION 'order %: a capture of % is not its total (%)',
                NEW.order_id, NEW.amount, COALESCE(total::text, 'no such order')
            USING ERRCODE = 'check_violation',
                  CONSTRAINT = 'capture_is_the_order_total';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER capture_is_the_order_total
    BEFORE INSERT OR UPDATE OF amount, status ON payments
    FOR EACH ROW WHEN (NEW.status = 'CAPTURED')
    EXECUTE FUNCTION check_capture_amount();

-- As before, and each reservation records the catalog's price.
CREATE OR REPLACE FUNCTION reserve_inventory(p_order_id TEXT)
RETURNS TABLE (
    outcome        TEXT,
    lines          INTEGER,
    line_product   TEXT,
    line_quantity  INTEGER,
    line_price     NUMERIC(12, 2),
    catalog_price  NUMERIC(12, 2),
    catalog_stock  INTEGER
)
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    current_status TEXT;
    held TEXT[];
    line RECORD;
BEGIN
    SELECT o.status INTO current_status FROM orders o WHERE o.order_id = p_order_id FOR UPDATE;
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
    IF current_status IN ('FAILED', 'CANCELLED', 'COMPLETED') THEN
        outcome := 'ENDED';
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

    WITH taken AS (
        UPDATE products p SET stock = p.stock - i.quantity
          FROM order_items i
         WHERE i.order_id = p_order_id AND p.product_id = i.product_id
        RETURNING i.order_id, i.line_no, i.product_id, i.quantity, p.unit_price),
    held AS (
        INSERT INTO inventory_reservations (order_id, line_no, product_id, quantity, unit_price)
        SELECT t.order_id, t.line_no, t.product_id, t.quantity, t.unit_price FROM taken t)
    UPDATE orders o SET status = 'INVENTORY_RESERVED', step = 'reserve_inventory'
     WHERE o.order_id = p_order_id;
    outcome := 'RESERVED';
    RETURN NEXT;
END;
$$;
