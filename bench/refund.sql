-- The limit: the partial refund of 1 unit that POST /api/v2/sales/{id}/refunds/ makes,
-- in raw SQL on the project's own tables, statement for statement in the service's order
-- (refunds/services/refund.py): lock the sale, its lines and its payments (pk order),
-- insert the refund and its line, move the line counters, restock, insert the payment
-- allocation and move the payment counter, insert the alert rows, update the sale.
--
-- Run by bench/run as:  pgbench -n -c 8 -j 2 -T SECONDS -f bench/refund.sql
--                         -D minsale=ID -D nsales=N -D k=0 DBNAME
-- Sales are drawn at random from [minsale, minsale + nsales) without repeats
-- (pgbench's permute() over a per-client counter), as the API scenario spreads over
-- distinct sales.
\set k :k + 1
\set sid :minsale + permute(:k * 8 + :client_id, :nsales)
\set sfound 0
\set lid 0
BEGIN;
SELECT s.id AS sfound, coalesce(s.customer_id, 0) AS cust, s.amount_paid, s.amount_refunded,
       s.units, s.refunded_units, s.status, c.email, c.phone
  FROM sales_sale s LEFT JOIN sales_customer c ON c.id = s.customer_id
 WHERE s.id = :sid FOR UPDATE OF s \aset
SELECT id, product_id, quantity, refunded_quantity, net_amount, tax_amount
  FROM sales_saleline WHERE sale_id = :sid ORDER BY id FOR UPDATE;
SELECT id AS lid, coalesce(product_id, 0) AS pid,
       net_amount * (refunded_quantity + 1) / quantity
         - net_amount * refunded_quantity / quantity AS amt,
       tax_amount * (refunded_quantity + 1) / quantity
         - tax_amount * refunded_quantity / quantity AS tax
  FROM sales_saleline
 WHERE sale_id = :sid AND refunded_quantity < quantity ORDER BY id LIMIT 1 \aset
SELECT id AS pay, amount, refunded_amount
  FROM sales_payment WHERE sale_id = :sid ORDER BY id FOR UPDATE \aset
\if :lid > 0
INSERT INTO refunds_refund (
    type, status, currency, restock, refund_processing_fee, refund_reseller_fee,
    refund_shipping, alert_customer, online, lines_amount, tax_amount, processing_fee,
    reseller_fee, shipping_fee, total, units, reason, note, batch_id, request_hash,
    import_source, source, created_at, settled_at, failure_reason, created_by_id, sale_id)
VALUES ('refund', 'succeeded', 'GBP', true, false, false, false, true, false, :amt, :tax,
        0, 0, 0, :amt + :tax, 1, 'requested_by_customer', '', '', '', '', 'api', now(),
        now(), '', NULL, :sid)
RETURNING id AS rid \gset
INSERT INTO refunds_refundline (refund_id, sale_line_id, quantity, amount, tax_amount)
VALUES (:rid, :lid, 1, :amt, :tax);
UPDATE sales_saleline
   SET refunded_quantity = refunded_quantity + 1, refunded_amount = refunded_amount + :amt,
       refunded_tax = refunded_tax + :tax
 WHERE id = :lid;
UPDATE sales_product SET stock = stock + 1 WHERE id = :pid;
INSERT INTO refunds_refundpayment (refund_id, payment_id, amount, online, status,
                                   gateway_reference, attempts, last_error, created_at,
                                   settled_at)
VALUES (:rid, :pay, :amt + :tax, false, 'succeeded', '', 0, '', now(), now());
UPDATE sales_payment SET refunded_amount = refunded_amount + :amt + :tax WHERE id = :pay;
INSERT INTO refunds_customeralert (sale_id, refund_id, event, channel, recipient, status,
                                   attempts, last_error, created_at)
SELECT :sid, :rid, 'refund_created', v.ch, v.rcpt, 'pending', 0, '', now()
  FROM sales_customer c, LATERAL (VALUES ('email', c.email), ('sms', c.phone)) v (ch, rcpt)
 WHERE c.id = :cust AND v.rcpt <> '';
UPDATE sales_sale
   SET amount_refunded = amount_refunded + :amt + :tax,
       refunded_units = refunded_units + 1,
       status = CASE WHEN refunded_units + 1 >= units
                      AND amount_refunded + :amt + :tax >= amount_paid
                     THEN 'refunded' ELSE 'partially_refunded' END,
       updated_at = now()
 WHERE id = :sid;
\endif
COMMIT;
