pub async fn run(_d: &domain::Domain, _n: u32) -> anyhow::Result<String> {
    anyhow::bail!("demo data generator not built yet")
}
