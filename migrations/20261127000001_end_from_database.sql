-- Ending an order from what the database holds (SPEC §7, "Faults are not
-- business outcomes").
--
-- A local activity can take effect in a workflow task whose completion the
-- server then rejects (a signal arrived meanwhile): its marker is lost, and
-- the retried task does not know the step ran. So when an order ends early,
-- what to undo is read here, not taken from the workflow's memory, and the
-- first terminal status written wins:
--
-- * `finish_order` records FAILED or CANCELLED unless the order already
--   ended, records the customer's notice in the same transaction (the
--   outbox), puts back every reservation the order still holds, and names
--   the capture still to refund. An order already COMPLETED (its
--   confirmation went out) is left as it is: a late cancel is refused.
-- * `reserve_inventory` takes nothing for an order that has ended.

CREATE FUNCTION finish_order(
    p_order_id        TEXT,
    p_status          TEXT,
    p_step            TEXT,
    p_failure_code    TEXT,
    p_failure_message TEXT,
    p_cancel_reason   TEXT
)
RETURNS TABLE (
    outcome            TEXT,     -- ENDED, COMPLETED (left as it is) or NOT_RECORDED
    final_status       TEXT,     -- the status the order ended with
    final_code         TEXT,
    final_message      TEXT,
    final_reason       TEXT,
    released           INTEGER,  -- reservation lines put back now
    refund_payment_id  BIGINT,   -- a capture still to refund, if any
    refund_gateway_ref TEXT,
    refund_amount      NUMERIC(12, 2)
)
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    o RECORD;
BEGIN
    SELECT x.status, x.failure_code, x.failure_message, x.cancel_reason, x.customer_email
      INTO o
      FROM orders x WHERE x.order_id = p_order_id
       FOR UPDATE;
    IF NOT FOUND THEN
        outcome := 'NOT_RECORDED';
        RETURN NEXT;
        RETURN;
    END IF;
    IF o.status = 'COMPLETED' THEN
        outcome := 'COMPLETED';
        final_status := o.status;
        RETURN NEXT;
        RETURN;
    END IF;

    IF o.status NOT IN ('FAILED', 'CANCELLED') THEN
        UPDATE orders x
           SET status = p_status, step = COALESCE(p_step, x.step),
               failure_code = p_failure_code, failure_message = p_failure_message,
               cancel_reason = p_cancel_reason
         WHERE x.order_id = p_order_id
        RETURNING x.status, x.failure_code, x.failure_message, x.cancel_reason, x.customer_email
          INTO o;
    END IF;
    INSERT INTO notifications (order_id, kind, recipient)
    VALUES (p_order_id,
            CASE o.status WHEN 'FAILED' THEN 'FAILURE' ELSE 'CANCELLATION' END,
            o.customer_email)
    ON CONFLICT (order_id, kind) DO NOTHING;

    released := release_inventory(p_order_id);
    SELECT p.payment_id, p.gateway_ref, p.amount
      INTO refund_payment_id, refund_gateway_ref, refund_amount
      FROM payments p WHERE p.order_id = p_order_id AND p.status = 'CAPTURED';

    outcome := 'ENDED';
    final_status := o.status;
    final_code := o.failure_code;
    final_message := o.failure_message;
    final_reason := o.cancel_reason;
    RETURN NEXT;
END;
$$;

-- As before, and an order that has ended is not reserved for (outcome ENDED).
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
         WHERE i.order_id = p_order_id AND p.product_id = i.product_id),
    held AS (
        INSERT INTO inventory_reservations (order_id, line_no, product_id, quantity)
        SELECT i.order_id, i.line_no, i.product_id, i.quantity
          FROM order_items i WHERE i.order_id = p_order_id)
    UPDATE orders o SET status = 'INVENTORY_RESERVED', step = 'reserve_inventory'
     WHERE o.order_id = p_order_id;
    outcome := 'RESERVED';
    RETURN NEXT;
END;
$$;

-- Notifications are an outbox: recorded in a short statement, delivered
-- with no transaction open, then recorded SENT or FAILED. While one
-- execution delivers, the row is SENDING with a lease (`claimed_until`), so
-- a concurrent execution does not deliver it too; a lease left by a crash
-- runs out and the notice can be claimed again.
ALTER DOMAIN notification_status DROP CONSTRAINT notification_status_known;
ALTER DOMAIN notification_status ADD CONSTRAINT notification_status_known
    CHECK (VALUE IN ('PENDING', 'SENDING', 'SENT', 'FAILED'));
ALTER TABLE notifications ADD COLUMN claimed_until TIMESTAMPTZ;
