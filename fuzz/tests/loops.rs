//! The fuzz targets as bounded loops on stable Rust (no libFuzzer): each target gets its
//! seeds, then inputs made from them by a seeded RNG (bit flips, byte edits, insertions of
//! interesting tokens, truncations, splices, random bytes) until its share of
//! RUST_FUZZ_SECONDS (default 2 s per target) is spent. RUST_FUZZ_SEED fixes the RNG.

use std::time::{Duration, Instant};

use backstage_kubernetes_auth_native_fuzz as targets;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

const TOKENS: &[&[u8]] = &[
    b"<",
    b">",
    b"</",
    b"/>",
    b"<![CDATA[",
    b"]]>",
    b"&amp;",
    b"&#0;",
    b"&#xD800;",
    b"\"",
    b"{",
    b"}",
    b"[",
    b"]",
    b":",
    b",",
    b"null",
    b"true",
    b"1e999",
    b"-0",
    b"\\u0000",
    b"\\ud800",
    b"-----BEGIN CERTIFICATE-----\n",
    b"-----END CERTIFICATE-----\n",
    b"\n",
    b"\r\n",
    b"=",
    b"[profile ",
    b"[default]\n",
    b"\xff",
    b"\xc0\x80",
    b"\x00",
    b"LEAKCANARY",
    b"2026-01-01T00:00:00Z",
    b"9999-12-31T23:59:59Z",
];

fn mutate(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut data = seeds[rng.below(seeds.len())].clone();
    for _ in 0..=rng.below(8) {
        let len = data.len();
        match rng.below(8) {
            0 if len > 0 => {
                let i = rng.below(len);
                data[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                data[i] = rng.next() as u8;
            }
            2 => {
                let t = TOKENS[rng.below(TOKENS.len())];
                let at = rng.below(len + 1);
                data.splice(at..at, t.iter().copied());
            }
            3 if len > 0 => data.truncate(rng.below(len)),
            4 if len > 0 => {
                let a = rng.below(len);
                let b = (a + rng.below(64)).min(len);
                data.drain(a..b);
            }
            5 => {
                let other = &seeds[rng.below(seeds.len())];
                let at = rng.below(len + 1);
                let from = rng.below(other.len() + 1);
                data.truncate(at);
                data.extend_from_slice(&other[from..]);
            }
            6 if len > 0 => {
                // Repeat a slice: deep nesting, long runs.
                let a = rng.below(len);
                let b = (a + 1 + rng.below(16)).min(len);
                let chunk = data[a..b].to_vec();
                for _ in 0..rng.below(200) {
                    data.splice(a..a, chunk.iter().copied());
                }
            }
            _ => {
                let n = rng.below(64);
                data.extend((0..n).map(|_| rng.next() as u8));
            }
        }
    }
    data
}

fn budget() -> Duration {
    let total: f64 = std::env::var("RUST_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10.0);
    Duration::from_secs_f64(total / 5.0)
}

fn run(name: &str, seeds: Vec<Vec<u8>>, mut target: impl FnMut(&[u8])) {
    let seed = std::env::var("RUST_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        })
        | 1;
    let mut rng = Rng(seed);
    let started = Instant::now();
    let mut inputs = 0u64;
    let mut check = |data: &[u8], inputs: &mut u64| {
        *inputs += 1;
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| target(data)));
        if let Err(panic) = result {
            eprintln!(
                "rust-fuzz {name}: PANIC (seed {seed}) on input {:?}",
                String::from_utf8_lossy(data)
            );
            std::panic::resume_unwind(panic);
        }
    };
    for s in &seeds {
        check(s, &mut inputs);
    }
    let limit = budget();
    while started.elapsed() < limit {
        let data = mutate(&mut rng, &seeds);
        check(&data, &mut inputs);
    }
    println!(
        "rust-fuzz {name}: {inputs} inputs in {:.1} s (seed {seed})",
        started.elapsed().as_secs_f64()
    );
}

const CERT: &str = include_str!("../seeds/cert.pem");

#[test]
fn concierge() {
    let answer = |body: String| {
        let mut v = vec![1u8];
        v.extend_from_slice(body.as_bytes());
        v
    };
    let ok = serde_json::json!({
        "kind": "TokenCredentialRequest",
        "apiVersion": "login.concierge.pinniped.dev/v1alpha1",
        "status": { "credential": {
            "expirationTimestamp": "2030-01-01T00:00:00Z",
            "clientCertificateData": CERT,
            "clientKeyData": "-----BEGIN PRIVATE KEY-----\nLEAKCANARY\n-----END PRIVATE KEY-----\n",
        } }
    });
    let seeds = vec![
        answer(ok.to_string()),
        answer(r#"{"kind":"TokenCredentialRequest","status":{"message":"authentication failed"}}"#.into()),
        answer(r#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"Unauthorized","code":401}"#.into()),
        b"\x07<html>error</html>".to_vec(),
        Vec::new(),
    ];
    run("concierge", seeds, targets::concierge);
}

#[test]
fn pem() {
    let b64 = base64_of(CERT.as_bytes());
    let seeds = vec![
        CERT.as_bytes().to_vec(),
        format!("{CERT}{CERT}").into_bytes(),
        b64.into_bytes(),
        b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".to_vec(),
        b"not a cert".to_vec(),
    ];
    run("pem", seeds, targets::pem);
}

#[test]
fn aws_integration_json() {
    let seeds = vec![
        br#"{"mainAccount":{"accessKeyId":"AKIA","secretAccessKey":"LEAKCANARY"},"accounts":[{"accountId":"123456789012","roleName":"r","externalId":"x"}],"accountDefaults":{"roleName":"d","partition":"aws-cn","region":"eu-west-1"}}"#.to_vec(),
        br#"{"accounts":[{"accountId":"1","profile":"p","roleName":"r"},{"accountId":"1"}]}"#.to_vec(),
        br#"{"mainAccount":{"profile":"team"}}"#.to_vec(),
        br#"{"type":"JWTAuthenticator","name":"x","apiGroup":"g","timeoutMs":5}"#.to_vec(),
        b"[]".to_vec(),
    ];
    run("aws_integration_json", seeds, targets::aws_integration_json);
}

#[test]
fn aws_config_files() {
    let seeds = vec![
        b"[default]\nregion = us-east-1\n[profile team]\nrole_arn = arn:aws:iam::123456789012:role/r\nsource_profile = default\n\xff[default]\naws_access_key_id = AKIA\naws_secret_access_key = LEAKCANARY\n".to_vec(),
        b"[profile p]\ncredential_process = /bin/echo x\nsso_session = s\n[sso-session s]\nsso_region = us-east-1\n".to_vec(),
        b"[profile a]\ns3 =\n  max_concurrent_requests = 10\n\xff".to_vec(),
        b"[ default ]\n# comment\n; other\nkey=value ; inline\n".to_vec(),
    ];
    run("aws_config_files", seeds, targets::aws_config_files);
}

#[test]
fn sts_xml() {
    let ok = "<AssumeRoleResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><AssumeRoleResult><Credentials><AccessKeyId>ASIAFUZZ</AccessKeyId><SecretAccessKey>s/LEAKCANARY</SecretAccessKey><SessionToken>tokLEAKCANARY</SessionToken><Expiration>2030-01-01T00:00:00Z</Expiration></Credentials><AssumedRoleUser><Arn>arn</Arn><AssumedRoleId>id</AssumedRoleId></AssumedRoleUser></AssumeRoleResult><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></AssumeRoleResponse>";
    let who = "<GetCallerIdentityResponse><GetCallerIdentityResult><Arn>arn:aws:iam::123456789012:user/u</Arn><UserId>U</UserId><Account>123456789012</Account></GetCallerIdentityResult></GetCallerIdentityResponse>";
    let err = "<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>r</RequestId></ErrorResponse>";
    let with = |status: u8, body: &str| {
        let mut v = vec![status];
        v.extend_from_slice(body.as_bytes());
        v
    };
    let seeds = vec![
        with(0, ok),
        with(0, who),
        with(2, err),
        with(7, err),
        with(0, ""),
    ];
    run("sts_xml", seeds, targets::sts_xml);
}

fn base64_of(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n =
            chunk.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b)) << (8 * (3 - chunk.len()));
        for i in 0..=chunk.len() {
            out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}
