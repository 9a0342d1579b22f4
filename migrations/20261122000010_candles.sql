-- Closed candles from market-data feeds. Market data is the same for every
-- tenant, so this table has no tenant_id and no row-level security:
-- tenants' jobs read it (flotilla_tenant may SELECT), only the service's
-- own role writes it. Prices are double precision because the strategies
-- compute in f64; nothing here is money owed.

CREATE TABLE candles (
    symbol      text NOT NULL CHECK (symbol ~ '^[A-Z0-9][A-Z0-9._:/-]{0,31}$'),
    resolution  text NOT NULL
        CHECK (resolution IN ('1m', '3m', '5m', '10m', '15m', '30m', '1h', '2h', '4h', '6h', '12h', '1D')),
    -- [open_time, close_time): close_time is the interval's end.
    open_time   timestamptz NOT NULL,
    close_time  timestamptz NOT NULL,
    open        double precision NOT NULL,
    high        double precision NOT NULL,
    low         double precision NOT NULL,
    close       double precision NOT NULL,
    volume      double precision NOT NULL CHECK (volume >= 0),
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (symbol, resolution, close_time),
    CHECK (open_time < close_time),
    CHECK (low > 0 AND low <= high AND open BETWEEN low AND high AND close BETWEEN low AND high)
);

GRANT SELECT ON candles TO flotilla_tenant;
