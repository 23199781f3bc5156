-- Deliveries by state, kept by triggers in the transactions that change the states, so the
-- /metrics gauges read three rows instead of counting the whole table.
CREATE TABLE delivery_state_counts (
    state TEXT PRIMARY KEY,
    n     INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO delivery_state_counts (state, n) VALUES ('pending', 0), ('delivered', 0), ('dead', 0);
INSERT INTO delivery_state_counts (state, n)
    SELECT state, COUNT(*) FROM deliveries GROUP BY state
    ON CONFLICT (state) DO UPDATE SET n = excluded.n;

CREATE TRIGGER deliveries_count_insert AFTER INSERT ON deliveries BEGIN
    UPDATE delivery_state_counts SET n = n + 1 WHERE state = NEW.state;
END;
CREATE TRIGGER deliveries_count_update AFTER UPDATE OF state ON deliveries
    WHEN OLD.state <> NEW.state BEGIN
    UPDATE delivery_state_counts SET n = n - 1 WHERE state = OLD.state;
    UPDATE delivery_state_counts SET n = n + 1 WHERE state = NEW.state;
END;
CREATE TRIGGER deliveries_count_delete AFTER DELETE ON deliveries BEGIN
    UPDATE delivery_state_counts SET n = n - 1 WHERE state = OLD.state;
END;
