-- The payments ledger is written ahead of the gateway (SPEC §7): a capture
-- is recorded PENDING, under the order's lock, before the gateway is asked,
-- and CAPTURED (or DECLINED) with its answer. An order that ends meanwhile
-- finds the PENDING capture and has it voided: refunded if the gateway
-- charged it, never charged later. Before, a capture whose answer was lost
-- (the database down at that moment) left money at the gateway that no
-- ending knew of.
ALTER DOMAIN payment_status DROP CONSTRAINT payment_status_known;
ALTER DOMAIN payment_status ADD CONSTRAINT payment_status_known
    CHECK (VALUE IN ('PENDING', 'CAPTURED', 'DECLINED', 'REFUNDED', 'VOIDED'));

-- As before, with three changes:
-- * a PENDING capture is named for the ending to resolve, like a CAPTURED one;
-- * `ended_now` says whether this call recorded the ending (for metrics);
-- * a paid order whose confirmation went out, or may have (SENDING: the
--   result of its delivery was lost), is completed rather than ended, so a
--   customer told "confirmed" is never then cancelled.
DROP FUNCTION finish_order(TEXT, TEXT, TEXT, TEXT, TEXT, TEXT);
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
    refund_amount      NUMERIC(12, 2),
    ended_now          BOOLEAN   -- this call recorded the ending
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
    -- A confirmation that went out, or may have (its delivery's result
    -- was lost), completes a paid order instead of ending it.
    IF o.status = 'PAID' AND EXISTS (
        SELECT 1 FROM notifications n
         WHERE n.order_id = p_order_id AND n.kind = 'CONFIRMATION'
           AND n.status IN ('SENDING', 'SENT'))
    THEN
        UPDATE orders x SET status = 'COMPLETED', step = 'send_notification'
         WHERE x.order_id = p_order_id;
        UPDATE notifications n
           SET status = 'FAILED', claimed_until = NULL,
               last_error = 'the result of its delivery was lost; it may have reached the customer'
         WHERE n.order_id = p_order_id AND n.kind = 'CONFIRMATION' AND n.status = 'SENDING';
        o.status := 'COMPLETED';
    END IF;
    IF o.status = 'COMPLETED' THEN
        outcome := 'COMPLETED';
        final_status := o.status;
        RETURN NEXT;
        RETURN;
    END IF;

    ended_now := o.status NOT IN ('FAILED', 'CANCELLED');
    IF ended_now THEN
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
      FROM payments p WHERE p.order_id = p_order_id AND p.status IN ('CAPTURED', 'PENDING');

    outcome := 'ENDED';
    final_status := o.status;
    final_code := o.failure_code;
    final_message := o.failure_message;
    final_reason := o.cancel_reason;
    RETURN NEXT;
END;
$$;

