-- Deliveries by state without COUNT(*): every statement that inserts, deletes or changes the
-- state of deliveries appends its net change per state here (statement-level triggers over the
-- transition tables: one row per statement, not per delivery). Appending never waits on another
-- instance's transaction, unlike one shared counter row would; reading folds the rows into one
-- per state (see `delivery_counts`).
CREATE TABLE delivery_state_counts (
    id    BIGSERIAL PRIMARY KEY,
    state TEXT NOT NULL,
    n     BIGINT NOT NULL
);
INSERT INTO delivery_state_counts (state, n) SELECT state, COUNT(*) FROM deliveries GROUP BY state;

CREATE FUNCTION wabridge_count_deliveries() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO delivery_state_counts (state, n)
            SELECT state, COUNT(*) FROM new_rows GROUP BY state;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO delivery_state_counts (state, n)
            SELECT state, -COUNT(*) FROM old_rows GROUP BY state;
    ELSE
        INSERT INTO delivery_state_counts (state, n)
            SELECT state, SUM(d) FROM (
                SELECT state, 1 AS d FROM new_rows UNION ALL SELECT state, -1 FROM old_rows
            ) c GROUP BY state HAVING SUM(d) <> 0;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER deliveries_count_insert AFTER INSERT ON deliveries
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION wabridge_count_deliveries();
CREATE TRIGGER deliveries_count_update AFTER UPDATE ON deliveries
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION wabridge_count_deliveries();
CREATE TRIGGER deliveries_count_delete AFTER DELETE ON deliveries
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION wabridge_count_deliveries();
