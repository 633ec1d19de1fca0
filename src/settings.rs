//! The deployment's settings: every var the request path reads (README
//! "Configuration"), with its default, parsed once from the deployment's vars and
//! secrets. A deployment's vars are fixed for the life of its isolates, so the edge
//! builds this once per isolate and hands it down.

/// Settings of one deployment. A var that is unset, empty or not a number takes its
/// default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// `MAX_BODY_BYTES`: larger request bodies get 413.
    pub max_body_bytes: usize,
    /// `UPSTREAM_TIMEOUT_MS`: the wait for a stream's (or embeddings') response headers.
    pub upstream_timeout_ms: u64,
    /// `UPSTREAM_REPLY_TIMEOUT_MS`: a non-streamed reply, headers and body.
    pub upstream_reply_timeout_ms: u64,
    /// `MAX_REPLY_BYTES`: the largest non-streamed upstream reply read.
    pub max_reply_bytes: usize,
    /// `RESERVATION_TTL_MS` (at least a second): a hold's life without renewal.
    pub reservation_ttl_ms: u64,
    /// `STREAM_KEEPALIVE_MS` and `STREAM_IDLE_TIMEOUT_MS`.
    pub stream_keepalive_ms: u64,
    pub stream_idle_timeout_ms: u64,
    /// `DRAIN_AFTER_DISCONNECT_MS` and `DRAIN_MAX_BYTES`: what is still read of a reply
    /// the provider bills after its client left.
    pub drain_ms: u64,
    pub drain_bytes: usize,
    /// `ECHO_STREAM_DELAY_MS`: the pause between the demo model's streamed words.
    pub echo_stream_delay_ms: u64,
    /// `PAID_REQUESTS_PER_SECOND`: a per-key cap on paid requests (0: none).
    pub paid_requests_per_second: u64,
    /// `MEDIA_ALLOW_GEMINI_FILES=true`: media parts may name Gemini Files API URIs.
    pub media_allow_gemini_files: bool,
    /// `MEDIA_FETCH_ALLOW_HOSTS`: private or local hosts the media fetcher may reach.
    pub media_fetch_allow_hosts: Vec<String>,
    /// `MEDIA_FETCH_NAMES_NEED_FETCHER=true`: this run's egress does not stop private
    /// addresses (`make dev`): media hosts given by name are fetched only through a
    /// public-only `MEDIA_FETCHER` binding, or when listed.
    pub media_names_need_fetcher: bool,
    /// `MEDIA_MAX_BYTES`, `MEDIA_FETCH_TIMEOUT_MS`, `ISOLATE_MEDIA_BYTES`.
    pub media_max_bytes: usize,
    pub media_fetch_timeout_ms: u64,
    pub isolate_media_bytes: u64,
    /// `ISOLATE_REPLY_BYTES`: the replies read whole or gathered by all requests of one
    /// isolate together (streams passed through are not buffered and do not count).
    pub isolate_reply_bytes: u64,
    /// `FREE_REQUESTS_PER_MINUTE` and `FREE_REQUESTS_PER_DAY`.
    pub free_requests_per_minute: u64,
    pub free_requests_per_day: u64,
    /// `CATALOG_CACHE_SECS`: how long an isolate keeps the catalogue.
    pub catalog_cache_secs: u64,
    /// `KEY_CACHE_MS` (at least 1): how stale an isolate's view of a key may be.
    pub key_cache_ms: u64,
    /// `LEASE_IDLE_MS` (at least 1): an unused lease goes back after this long.
    pub lease_idle_ms: u64,
    /// `SETTLE_FLUSH_MS` and `SETTLE_RETRY_MS` (at least 1).
    pub settle_flush_ms: u64,
    pub settle_retry_ms: u64,
    /// `STREAM_FAILOVER_DEFAULT=continue`: streams fail over with continuation unless
    /// the request says `provider.stream_failover: "terminate"`.
    pub stream_failover_continue: bool,
    /// The `KEY_SECRET` and `ADMIN_KEY` secrets.
    pub key_secret: Option<String>,
    pub admin_key: Option<String>,
}

/// `KEY_CACHE_MS` when unset.
pub const DEFAULT_KEY_CACHE_MS: u64 = 5_000;
/// `RESERVATION_TTL_MS` when unset: 15 minutes.
pub const DEFAULT_RESERVATION_TTL_MS: u64 = 15 * 60 * 1000;
/// `SETTLE_RETRY_MS` when unset.
pub const DEFAULT_SETTLE_RETRY_MS: u64 = 250;

const MIB: u64 = 1024 * 1024;

/// The numeric vars: name, default and floor, in the order [`Settings::from_vars`]
/// reads them (one table, so that the defaults are written once).
const NUMBERS: [(&str, u64, u64); 22] = [
    ("MAX_BODY_BYTES", 8 * MIB, 0),
    ("UPSTREAM_TIMEOUT_MS", 60_000, 0),
    ("UPSTREAM_REPLY_TIMEOUT_MS", 600_000, 0),
    ("MAX_REPLY_BYTES", 32 * MIB, 0),
    ("RESERVATION_TTL_MS", DEFAULT_RESERVATION_TTL_MS, 1000),
    ("STREAM_KEEPALIVE_MS", 15_000, 0),
    ("STREAM_IDLE_TIMEOUT_MS", 120_000, 0),
    ("DRAIN_AFTER_DISCONNECT_MS", 20_000, 0),
    ("DRAIN_MAX_BYTES", 4 * MIB, 0),
    ("ECHO_STREAM_DELAY_MS", 0, 0),
    ("PAID_REQUESTS_PER_SECOND", 0, 0),
    ("MEDIA_MAX_BYTES", 20 * MIB, 0),
    ("MEDIA_FETCH_TIMEOUT_MS", 10_000, 0),
    ("ISOLATE_MEDIA_BYTES", 24 * MIB, 0),
    // 3 copies of 10 MiB of replies beside 3.7 of 24 MiB of media: 119 MiB of 128 MB.
    ("ISOLATE_REPLY_BYTES", 10 * MIB, 0),
    ("FREE_REQUESTS_PER_MINUTE", 20, 0),
    ("FREE_REQUESTS_PER_DAY", 200, 0),
    ("CATALOG_CACHE_SECS", 30, 0),
    ("KEY_CACHE_MS", DEFAULT_KEY_CACHE_MS, 1),
    ("LEASE_IDLE_MS", 10_000, 1),
    ("SETTLE_FLUSH_MS", 100, 0),
    ("SETTLE_RETRY_MS", DEFAULT_SETTLE_RETRY_MS, 1),
];

impl Settings {
    /// The settings from `var`, which gives a var's or secret's value by name.
    pub fn from_vars(var: &dyn Fn(&str) -> Option<String>) -> Settings {
        let text = |name: &str| var(name).filter(|s| !s.is_empty());
        // Read in the order of the table, which is the order of the fields below.
        let mut numbers = NUMBERS.iter().map(|&(name, default, floor)| {
            let n = text(name).and_then(|s| s.trim().parse().ok());
            n.unwrap_or(default).max(floor)
        });
        let mut next = || numbers.next().unwrap_or(0);
        let size = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
        let hosts = text("MEDIA_FETCH_ALLOW_HOSTS").unwrap_or_default();
        Settings {
            max_body_bytes: size(next()),
            upstream_timeout_ms: next(),
            upstream_reply_timeout_ms: next(),
            max_reply_bytes: size(next()),
            reservation_ttl_ms: next(),
            stream_keepalive_ms: next(),
            stream_idle_timeout_ms: next(),
            drain_ms: next(),
            drain_bytes: size(next()),
            echo_stream_delay_ms: next(),
            paid_requests_per_second: next(),
            media_allow_gemini_files: text("MEDIA_ALLOW_GEMINI_FILES").as_deref() == Some("true"),
            media_fetch_allow_hosts: hosts
                .split(',')
                .map(|h| h.trim().to_string())
                .filter(|h| !h.is_empty())
                .collect(),
            media_names_need_fetcher: text("MEDIA_FETCH_NAMES_NEED_FETCHER").as_deref()
                == Some("true"),
            media_max_bytes: size(next()),
            media_fetch_timeout_ms: next(),
            isolate_media_bytes: next(),
            isolate_reply_bytes: next(),
            free_requests_per_minute: next(),
            free_requests_per_day: next(),
            catalog_cache_secs: next(),
            key_cache_ms: next(),
            lease_idle_ms: next(),
            settle_flush_ms: next(),
            settle_retry_ms: next(),
            stream_failover_continue: text("STREAM_FAILOVER_DEFAULT")
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("continue")),
            key_secret: text("KEY_SECRET"),
            admin_key: text("ADMIN_KEY"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_empty_and_unreadable_vars_take_their_defaults() {
        let none = Settings::from_vars(&|_| None);
        let empty = Settings::from_vars(&|_| Some(String::new()));
        let junk = Settings::from_vars(&|n| (n != "MEDIA_FETCH_ALLOW_HOSTS").then(|| "x1".into()));
        assert_eq!(none, empty);
        // Text that is no number leaves every number at its default; secrets are text.
        assert_eq!(junk.key_secret.as_deref(), Some("x1"));
        assert_eq!(
            Settings {
                key_secret: None,
                admin_key: None,
                ..junk
            },
            none
        );
        assert_eq!(none.max_body_bytes, 8_388_608);
        assert_eq!(none.max_reply_bytes, 33_554_432);
        assert_eq!(none.drain_bytes, 4_194_304);
        assert_eq!(none.isolate_media_bytes, 25_165_824);
        assert_eq!(none.isolate_reply_bytes, 10_485_760);
        assert_eq!(none.media_max_bytes, 20_971_520);
        assert_eq!(none.upstream_timeout_ms, 60_000);
        assert_eq!(none.upstream_reply_timeout_ms, 600_000);
        assert_eq!(none.reservation_ttl_ms, 900_000);
        assert_eq!((none.key_cache_ms, none.lease_idle_ms), (5_000, 10_000));
        assert_eq!((none.settle_flush_ms, none.settle_retry_ms), (100, 250));
        assert_eq!(
            (none.free_requests_per_minute, none.free_requests_per_day),
            (20, 200)
        );
        assert_eq!(none.paid_requests_per_second, 0);
        assert_eq!(
            (none.stream_keepalive_ms, none.stream_idle_timeout_ms),
            (15_000, 120_000)
        );
        assert_eq!((none.drain_ms, none.echo_stream_delay_ms), (20_000, 0));
        assert_eq!(
            (none.media_fetch_timeout_ms, none.catalog_cache_secs),
            (10_000, 30)
        );
        assert!(none.media_fetch_allow_hosts.is_empty());
        assert_eq!(none.key_secret, None);
    }

    #[test]
    fn streams_fail_over_by_default_only_where_the_deployment_says_continue() {
        let with = |v: &'static str| {
            Settings::from_vars(&move |n| (n == "STREAM_FAILOVER_DEFAULT").then(|| v.into()))
                .stream_failover_continue
        };
        assert!(with("continue"));
        assert!(with(" Continue "));
        assert!(!with("terminate"));
        assert!(!with(""));
        assert!(!Settings::from_vars(&|_| None).stream_failover_continue);
    }

    #[test]
    fn vars_are_read_with_their_floors() {
        let vars = [
            ("MAX_BODY_BYTES", " 1024 "),
            ("RESERVATION_TTL_MS", "5"),
            ("KEY_CACHE_MS", "0"),
            ("SETTLE_RETRY_MS", "0"),
            ("MEDIA_ALLOW_GEMINI_FILES", "true"),
            ("MEDIA_FETCH_ALLOW_HOSTS", " a.test, ,127.0.0.1:9 "),
            ("KEY_SECRET", "s"),
        ];
        let s = Settings::from_vars(&|n| {
            vars.iter()
                .find(|(k, _)| *k == n)
                .map(|(_, v)| v.to_string())
        });
        assert_eq!(s.max_body_bytes, 1024);
        assert_eq!(s.reservation_ttl_ms, 1000);
        assert_eq!((s.key_cache_ms, s.settle_retry_ms), (1, 1));
        assert!(s.media_allow_gemini_files);
        assert_eq!(s.media_fetch_allow_hosts, ["a.test", "127.0.0.1:9"]);
        assert_eq!(s.key_secret.as_deref(), Some("s"));
        // Only `true` turns it on.
        let s = Settings::from_vars(&|_| Some("yes".into()));
        assert!(!s.media_allow_gemini_files);
    }
}
