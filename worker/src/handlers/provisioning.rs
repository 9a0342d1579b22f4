//! The `provisioning` handler: converges a tenant to its stored state (see
//! `flotilla::tenancy::provision`). A failure on the last attempt marks the
//! tenant `failed` with the reason before the job goes to the dead letter,
//! so the API shows why; replaying the dead job resumes it.

use anyhow::anyhow;
use flotilla::backend::{JobContext, JobError};
use flotilla::kinds::provisioning::TenantJob;
use flotilla::telemetry::names;
use flotilla::tenancy::provision::Provisioner;
use tracing::{info, warn};

/// Runs one provisioning job.
pub async fn handle(
    provisioner: Provisioner,
    job: TenantJob,
    ctx: JobContext,
) -> Result<(), JobError> {
    match provisioner.converge(&job.tenant, job.action).await {
        Ok(done) => {
            if let Some(took) = done.provisioned_in {
                metrics::histogram!(names::PROVISIONING_DURATION, "tier" => done.tier.as_str())
                    .record(took.as_secs_f64());
                info!(tenant = %job.tenant, tier = %done.tier, seconds = took.as_secs_f64(), "tenant active");
            }
            Ok(())
        }
        Err(e) if e.is_permanent() => Err(JobError::permanent(anyhow!(e))),
        Err(e) => {
            if ctx.attempt >= ctx.max_attempts {
                let reason = e.to_string();
                if let Err(mark) = provisioner.mark_failed(&job.tenant, &reason).await {
                    warn!(tenant = %job.tenant, error = %mark, "could not mark the tenant failed");
                }
                metrics::counter!(names::PROVISIONING_FAILURES).increment(1);
            }
            Err(JobError::transient(anyhow!(e)))
        }
    }
}
