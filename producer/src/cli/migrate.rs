//! `migrate`: brings the database schema up to date (the Procfile's
//! `release` phase runs it before new processes start).

use flotilla::config::DatabaseArgs;
use flotilla::db;

/// Applies the pending migrations and says how many there were.
pub async fn run(args: &DatabaseArgs) -> anyhow::Result<()> {
    let pool = db::connect(&args.database_url).await?;
    let before = applied(&pool).await?;
    db::migrate(&pool).await?;
    let after = applied(&pool).await?;
    println!(
        "database {} is up to date: {} migration(s) applied now, {after} in all",
        db::redact(&args.database_url),
        after - before
    );
    Ok(())
}

async fn applied(pool: &sqlx::PgPool) -> anyhow::Result<i64> {
    let table: Option<String> = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations')::text")
        .fetch_one(pool)
        .await?;
    if table.is_none() {
        return Ok(0);
    }
    Ok(
        sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success")
            .fetch_one(pool)
            .await?,
    )
}
