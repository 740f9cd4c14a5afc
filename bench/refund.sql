-- The limit: the partial refund of 1 unit that POST /api/v2/sales/{id}/refunds/ makes,
-- in raw SQL on the project's own tables, in the same statements the service sends on
-- PostgreSQL (sales/selectors.py `_load_postgres`, refunds/services/write_pg.py):
--   1. lock the sale, then its lines (pk order), then its payments (pk order), and read
--      them with the customer, in one statement;
--   2. in one statement: insert the refund, its line, its allocation and its alert rows;
--      move the line counters, restock (product locked first, its stock move recorded),
--      move the payment counter,
--      update the sale's counters and status.
-- The amounts are the rounding rule of DESIGN §3.2 computed in SQL (the service computes
-- them in Python between the two statements).
--
-- Run by bench/run as:  pgbench -n -c 8 -j 2 -T SECONDS -f bench/refund.sql
--                         -D minsale=ID -D nsales=N -D k=0 DBNAME
-- Sales are drawn at random from [minsale, minsale + nsales) without repeats
-- (pgbench's permute() over a per-client counter), as the API scenario spreads over
-- distinct sales.
\set k :k + 1
\set sid :minsale + permute(:k * 8 + :client_id, :nsales)
BEGIN;
WITH s AS (SELECT * FROM sales_sale WHERE id = :sid FOR UPDATE),
     l AS (SELECT * FROM sales_saleline WHERE sale_id = :sid ORDER BY id FOR UPDATE),
     p AS (SELECT * FROM sales_payment WHERE sale_id = :sid ORDER BY id FOR UPDATE)
SELECT (SELECT row_to_json(s) FROM s)::text AS sale_doc,
       (SELECT row_to_json(c) FROM sales_customer c
         WHERE c.id = (SELECT customer_id FROM s))::text AS customer_doc,
       (SELECT coalesce(json_agg(l ORDER BY l.id), '[]'::json) FROM l)::text AS lines_doc,
       (SELECT coalesce(json_agg(p ORDER BY p.id), '[]'::json) FROM p)::text AS pays_doc,
       (SELECT id FROM l WHERE refunded_quantity < quantity ORDER BY id LIMIT 1) AS lid,
       (SELECT coalesce(product_id, 0) FROM l WHERE refunded_quantity < quantity
         ORDER BY id LIMIT 1) AS pid,
       (SELECT net_amount * (refunded_quantity + 1) / quantity
               - net_amount * refunded_quantity / quantity
          FROM l WHERE refunded_quantity < quantity ORDER BY id LIMIT 1) AS amt,
       (SELECT tax_amount * (refunded_quantity + 1) / quantity
               - tax_amount * refunded_quantity / quantity
          FROM l WHERE refunded_quantity < quantity ORDER BY id LIMIT 1) AS tax,
       (SELECT id FROM p ORDER BY id LIMIT 1) AS pay,
       (SELECT coalesce(customer_id, 0) FROM s) AS cust \gset
WITH r AS (
    INSERT INTO refunds_refund (
        type, status, currency, restock, refund_processing_fee, refund_reseller_fee,
        refund_shipping, alert_customer, online, lines_amount, tax_amount, processing_fee,
        reseller_fee, shipping_fee, total, units, reason, note, batch_id,
        import_source, source, created_at, settled_at, failure_reason, created_by_id,
        sale_id)
    VALUES ('refund', 'succeeded', 'GBP', true, false, false, false, true, false, :amt,
            :tax, 0, 0, 0, :amt + :tax, 1, 'damaged', '', '', '', 'api', now(), now(),
            '', NULL, :sid)
    RETURNING id),
rl AS (INSERT INTO refunds_refundline (refund_id, sale_line_id, quantity, amount, tax_amount)
       SELECT r.id, :lid, 1, :amt, :tax FROM r RETURNING id),
rp AS (INSERT INTO refunds_refundpayment (refund_id, payment_id, amount, online, status,
                                          gateway_reference, attempts, last_error,
                                          gateway_key, created_at, settled_at)
       SELECT r.id, :pay, :amt + :tax, false, 'succeeded', '', 0, '', gen_random_uuid(),
              now(), now() FROM r RETURNING id),
ca AS (INSERT INTO refunds_customeralert (refund_id, sale_id, event, channel, recipient,
                                          status, attempts, last_error, created_at)
       SELECT r.id, :sid, 'refund_created', v.ch, v.rcpt, 'pending', 0, '', now()
         FROM r, sales_customer c,
              LATERAL (VALUES ('email', c.email), ('sms', c.phone)) v (ch, rcpt)
        WHERE c.id = :cust AND v.rcpt <> '' RETURNING id),
lc AS (UPDATE sales_saleline
          SET refunded_quantity = refunded_quantity + 1,
              refunded_amount = refunded_amount + :amt, refunded_tax = refunded_tax + :tax
        WHERE id = :lid RETURNING 1),
sc_lock AS (SELECT id FROM sales_product WHERE id = :pid ORDER BY id FOR UPDATE),
sc AS (UPDATE sales_product t SET stock = t.stock + 1 FROM sc_lock l
        WHERE t.id = l.id RETURNING 1),
sm AS (INSERT INTO sales_stockmove (product_id, delta, kind, sale_id, refund_id, created_at)
       SELECT l.id, 1, 'refund', :sid, r.id, now() FROM r, sc_lock l RETURNING 1),
pc AS (UPDATE sales_payment SET refunded_amount = refunded_amount + :amt + :tax
        WHERE id = :pay RETURNING 1),
su AS (UPDATE sales_sale
          SET amount_refunded = amount_refunded + :amt + :tax,
              refunded_units = refunded_units + 1,
              status = CASE WHEN refunded_units + 1 >= units
                             AND amount_refunded + :amt + :tax >= amount_paid
                            THEN 'refunded' ELSE 'partially_refunded' END,
              updated_at = now()
        WHERE id = :sid RETURNING 1)
SELECT (SELECT id FROM r), ARRAY(SELECT id FROM rl), ARRAY(SELECT id FROM rp),
       ARRAY(SELECT id FROM ca);
COMMIT;
