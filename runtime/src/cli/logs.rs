//! `smsgw logs BACKEND [--follow]`: a backend's channel log, one exchange a
//! line, oldest first; `--follow` keeps printing new ones as they come.

use std::time::Duration;

use anyhow::Context as _;
use serde_json::Value;

/// Prints the last `limit` exchanges of `backend`, then (with `follow`) new ones every second.
pub async fn run(url: &str, backend: &str, limit: usize, follow: bool) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let base = format!("{}/api/v1/channel-log", url.trim_end_matches('/'));
    let page = get(&client, &base, &[("backend", backend.to_string()), ("limit", limit.to_string())]).await?;
    let mut entries = page["entries"].as_array().cloned().unwrap_or_default();
    entries.reverse();
    let mut last = entries.last().and_then(|e| e["id"].as_i64()).unwrap_or(0);
    for entry in &entries {
        println!("{}", line(entry));
    }
    if !follow {
        return Ok(());
    }
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let query = [("backend", backend.to_string()), ("after", last.to_string()), ("limit", "1000".to_string())];
        for entry in get(&client, &base, &query).await?["entries"].as_array().cloned().unwrap_or_default() {
            last = entry["id"].as_i64().unwrap_or(last);
            println!("{}", line(&entry));
        }
    }
}

async fn get(client: &reqwest::Client, url: &str, query: &[(&str, String)]) -> anyhow::Result<Value> {
    let response = client
        .get(url)
        .query(query)
        .send()
        .await
        .with_context(|| format!("cannot reach {url}: is the gateway running there? (set --url or SMSGW_URL)"))?;
    let status = response.status();
    let body: Value = response.json().await.context("the gateway's answer is not JSON")?;
    anyhow::ensure!(status.is_success(), "the gateway answered {status}: {}", body["error"]);
    Ok(body)
}

/// `2026-12-02T06:00:00Z #12 provider GET http://... -> 200 in 1.2 ms: answered 200 [messages 7]`.
fn line(entry: &Value) -> String {
    let at = entry["created_at"].as_i64().unwrap_or(0);
    let status = entry["status"].as_u64().map_or("-".to_string(), |s| s.to_string());
    let ms = entry["duration_us"].as_f64().unwrap_or(0.0) / 1000.0;
    let messages: Vec<String> = entry["message_ids"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m.as_i64())
        .map(|m| m.to_string())
        .collect();
    let messages = if messages.is_empty() { String::new() } else { format!(" [messages {}]", messages.join(", ")) };
    format!(
        "{} #{} {} {} {} -> {status} in {ms:.1} ms: {}{messages}",
        time(at),
        entry["id"],
        entry["kind"].as_str().unwrap_or("?"),
        entry["method"].as_str().unwrap_or("?"),
        entry["url"].as_str().unwrap_or("?"),
        entry["outcome"].as_str().unwrap_or(""),
    )
}

/// Milliseconds since the epoch as UTC `YYYY-MM-DDTHH:MM:SS.mmmZ`.
fn time(ms: i64) -> String {
    let (secs, millis) = (ms.div_euclid(1000), ms.rem_euclid(1000));
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    #[test]
    fn times_are_utc() {
        assert_eq!(super::time(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(super::time(1_796_169_600_123), "2026-12-02T00:00:00.123Z");
    }
}
