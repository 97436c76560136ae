-- A notice whose delivery's outcome is unknown is treated as delivered
-- (SPEC §7, DOCS "Notifications").
--
-- A webhook that answers after the time limit, or a connection cut after
-- the request went out, leaves a notice that may have reached the
-- customer. It was recorded FAILED, and a cancellation that came next then
-- went through: the customer was told "confirmed", then "cancelled". Such a
-- notice is now UNKNOWN, and `maybe_delivered` remembers it through later
-- attempts (one that fails outright does not make it FAILED again). A paid
-- order whose confirmation is SENT, SENDING or may have been delivered is
-- completed, never ended.
ALTER DOMAIN notification_status DROP CONSTRAINT notification_status_known;
ALTER DOMAIN notification_status ADD CONSTRAINT notification_status_known
    CHECK (VALUE IN ('PENDING', 'SENDING', 'SENT', 'FAILED', 'UNKNOWN'));
ALTER TABLE notifications ADD COLUMN maybe_delivered BOOLEAN NOT NULL DEFAULT false;

-- What the previous ending recorded for a delivery whose result was lost.
UPDATE notifications
   SET status = 'UNKNOWN', maybe_delivered = true
 WHERE status = 'FAILED'
   AND last_error = 'the result of its delivery was lost; it may have reached the customer';

-- What became of a notice, in the words of the order's state (`Delivery`):
-- SENT; UNKNOWN when it may have been delivered (no answer came, or the
-- result of a delivery was lost); FAILED; NULL when there is no such notice.
CREATE FUNCTION notice_delivery(p_order_id TEXT, p_kind TEXT)
RETURNS TEXT
LANGUAGE sql STABLE
AS $$
    SELECT CASE WHEN n.status = 'SENT' THEN 'SENT'
                WHEN n.maybe_delivered OR n.status IN ('SENDING', 'UNKNOWN') THEN 'UNKNOWN'
                ELSE 'FAILED' END
      FROM notifications n WHERE n.order_id = p_order_id AND n.kind = p_kind
$$;

-- As before, with a confirmation that may have been delivered counted as
-- delivered, and the confirmation's delivery returned (`confirmation`).
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
    ended_now          BOOLEAN,  -- this call recorded the ending
    confirmation       TEXT      -- a COMPLETED order's confirmation: SENT, UNKNOWN (may
                                 -- have been delivered) or FAILED; NULL when none
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
    -- A confirmation that went out, or may have (its delivery's result was
    -- lost, or never came), completes a paid order instead of ending it.
    IF o.status = 'PAID' AND EXISTS (
        SELECT 1 FROM notifications n
         WHERE n.order_id = p_order_id AND n.kind = 'CONFIRMATION'
           AND (n.status IN ('SENDING', 'SENT', 'UNKNOWN') OR n.maybe_delivered))
    THEN
        UPDATE orders x SET status = 'COMPLETED', step = 'send_notification'
         WHERE x.order_id = p_order_id;
        UPDATE notifications n
           SET status = 'UNKNOWN', maybe_delivered = true, claimed_until = NULL,
               last_error = 'the result of its delivery was lost; it may have reached the customer'
         WHERE n.order_id = p_order_id AND n.kind = 'CONFIRMATION' AND n.status = 'SENDING';
        o.status := 'COMPLETED';
    END IF;
    IF o.status = 'COMPLETED' THEN
        outcome := 'COMPLETED';
        final_status := o.status;
        confirmation := notice_delivery(p_order_id, 'CONFIRMATION');
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
