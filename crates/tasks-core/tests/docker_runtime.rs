//! `DockerRuntime` against a real engine: the one `DOCKER_HOST` names, else Docker's socket, else
//! Podman's (`scripts/setup-podman.sh` sets that up, with the `localhost/busybox:latest` image these
//! tests run). With no engine the tests say "skipped: ..." and pass, unless
//! `LOOKOUT_REQUIRE_CONTAINERS=1` (CI), when they fail. Every container a test creates is removed
//! when it ends, passed or failed.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lookout_tasks::runtime::docker::{resolve_docker_host, DockerHost, DockerRuntime, OOM_REASON};
use lookout_tasks::runtime::{
    ContainerRuntime, ContainerSpec, ContainerState, ExitStatus, OutputLine, OutputStream, RuntimeError,
};
use tokio::sync::mpsc;

const DEFAULT_IMAGE: &str = "localhost/busybox:latest";
/// No single step of these tests takes anywhere near this on a healthy engine.
const STEP: Duration = Duration::from_secs(60);

fn image() -> String {
    std::env::var("LOOKOUT_TEST_IMAGE").ok().filter(|s| !s.is_empty()).unwrap_or_else(|| DEFAULT_IMAGE.to_string())
}

fn skip_or_fail(why: String) -> Option<(Arc<DockerRuntime>, DockerHost)> {
    if std::env::var("LOOKOUT_REQUIRE_CONTAINERS").as_deref() == Ok("1") {
        panic!("LOOKOUT_REQUIRE_CONTAINERS=1, but {why}");
    }
    eprintln!("skipped: {why}");
    None
}

/// The engine to test against, or None (after saying why) when there is none to be had.
async fn engine() -> Option<(Arc<DockerRuntime>, DockerHost)> {
    let env_host = std::env::var("DOCKER_HOST").ok();
    let host = resolve_docker_host(None, env_host.as_deref(), |p| p.exists()).expect("DOCKER_HOST is malformed");
    let runtime = match DockerRuntime::connect(host.clone()).await {
        Ok(runtime) => runtime,
        // The runtime's own words: "no container engine answers at <host> (...); start ...".
        Err(RuntimeError::Unavailable(message)) => return skip_or_fail(message),
        Err(e) => return skip_or_fail(format!("no container engine at {host}: {e}")),
    };
    let image = image();
    match runtime.image_exists(&image).await {
        Ok(true) => Some((Arc::new(runtime), host)),
        Ok(false) => skip_or_fail(format!("image {image} is missing at {host} (scripts/setup-podman.sh builds it)")),
        Err(e) => skip_or_fail(format!("container engine at {host} failed: {e}")),
    }
}

/// One test's runtime and the names of the containers it made, for the cleanup.
#[derive(Clone)]
struct Ctx {
    runtime: Arc<DockerRuntime>,
    host: DockerHost,
    test: &'static str,
    names: Arc<Mutex<Vec<String>>>,
}

impl Ctx {
    /// A spec running `command` in the test image, under a name this test cleans up.
    fn spec(&self, suffix: &str, command: &[&str]) -> ContainerSpec {
        let name = format!("lookout-test-{}-{}-{}", self.test, suffix, std::process::id());
        self.names.lock().unwrap().push(name.clone());
        ContainerSpec {
            runtime_name: name,
            image: image(),
            entry_point: None,
            command: Some(command.iter().map(|s| s.to_string()).collect()),
            environment: Vec::new(),
            working_directory: None,
            cpu_units: None,
            memory_mib: None,
            labels: BTreeMap::new(),
        }
    }

    async fn create(&self, spec: &ContainerSpec) -> String {
        step(self.runtime.create(spec)).await.unwrap_or_else(|e| panic!("create {}: {e}", spec.runtime_name))
    }

    /// Creates, starts, follows and waits for `spec`.
    async fn run(&self, spec: &ContainerSpec) -> (String, Vec<OutputLine>, ExitStatus) {
        let id = self.create(spec).await;
        step(self.runtime.start(&id)).await.expect("start");
        let output = step(self.runtime.follow_output(&id, None)).await.expect("follow_output");
        let status = step(self.runtime.wait(&id)).await.expect("wait");
        (id, collect(output).await, status)
    }
}

/// Runs `body` against the engine, then removes the containers it created whatever happened.
async fn with_engine<F, Fut>(test: &'static str, body: F)
where
    F: FnOnce(Ctx) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some((runtime, host)) = engine().await else { return };
    let ctx = Ctx { runtime: runtime.clone(), host, test, names: Arc::default() };
    let names = ctx.names.clone();
    let outcome = tokio::spawn(body(ctx)).await;
    let names = names.lock().unwrap().clone();
    for name in names {
        if let Err(e) = runtime.remove(&name).await {
            eprintln!("cleanup: removing {name}: {e}");
        }
    }
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

async fn step<T>(future: impl Future<Output = T>) -> T {
    tokio::time::timeout(STEP, future).await.expect("engine step timed out")
}

async fn collect(mut output: mpsc::Receiver<OutputLine>) -> Vec<OutputLine> {
    let mut lines = Vec::new();
    while let Some(line) = step(output.recv()).await {
        lines.push(line);
    }
    lines
}

fn texts(lines: &[OutputLine], stream: OutputStream) -> Vec<&str> {
    lines.iter().filter(|l| l.stream == stream).map(|l| l.line.as_str()).collect()
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_to_success_with_output() {
    with_engine("success", |ctx| async move {
        let spec = ctx.spec("c", &["sh", "-c", "echo out1; echo err1 >&2; echo out2; printf 'no newline'"]);
        let before = now_ms();
        let (id, lines, status) = ctx.run(&spec).await;
        assert_eq!(status.exit_code, Some(0), "{status:?}");
        assert_eq!(status.reason, None);
        let finished = status.finished_at_ms.expect("finished_at");
        assert!(finished >= before - 1000 && finished <= now_ms() + 1000, "finished_at {finished} out of range");
        assert_eq!(texts(&lines, OutputStream::Stdout), ["out1", "out2", "no newline"]);
        assert_eq!(texts(&lines, OutputStream::Stderr), ["err1"]);
        for line in &lines {
            // Engine stamps (Podman's are whole seconds, hence the slack).
            assert!(line.timestamp_ms >= before - 1000 && line.timestamp_ms <= finished + 1000, "{line:?}");
        }
        assert_eq!(step(ctx.runtime.inspect(&id)).await.unwrap(), ContainerState::Exited(status));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_code_is_reported() {
    with_engine("exit3", |ctx| async move {
        let (_, lines, status) = ctx.run(&ctx.spec("c", &["sh", "-c", "echo failing; exit 3"])).await;
        assert_eq!(status.exit_code, Some(3), "{status:?}");
        assert_eq!(texts(&lines, OutputStream::Stdout), ["failing"]);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_kills_after_the_grace_period() {
    with_engine("stop", |ctx| async move {
        // busybox sh as PID 1 has no SIGTERM handler, so the kernel ignores SIGTERM: only the kill works.
        let id = ctx.create(&ctx.spec("c", &["sh", "-c", "sleep 60"])).await;
        step(ctx.runtime.start(&id)).await.unwrap();
        assert!(matches!(step(ctx.runtime.inspect(&id)).await.unwrap(), ContainerState::Running { .. }));
        let began = Instant::now();
        step(ctx.runtime.stop(&id, Duration::from_secs(1))).await.unwrap();
        let took = began.elapsed();
        assert!(took >= Duration::from_millis(900) && took < Duration::from_secs(15), "stop took {took:?}");
        let status = step(ctx.runtime.wait(&id)).await.unwrap();
        assert_eq!(status.exit_code, Some(137), "{status:?}");
        // Stopping a stopped container is fine.
        step(ctx.runtime.stop(&id, Duration::from_secs(1))).await.unwrap();
        assert!(matches!(step(ctx.runtime.inspect(&id)).await.unwrap(), ContainerState::Exited(s) if s.exit_code == Some(137)));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_image_is_image_not_found_naming_it() {
    with_engine("noimage", |ctx| async move {
        // A localhost registry: the pull attempt goes nowhere but this machine.
        let missing = format!("localhost/lookout-test-missing:{}", std::process::id());
        let spec = ContainerSpec { image: missing.clone(), ..ctx.spec("c", &["true"]) };
        match step(ctx.runtime.create(&spec)).await {
            Err(RuntimeError::ImageNotFound(message)) => {
                assert!(message.starts_with("CannotPullContainerError: "), "{message}");
                assert!(message.contains(&missing), "{message}");
                eprintln!("missing image: {message}");
            }
            other => panic!("expected ImageNotFound, got {other:?}"),
        }
        assert_eq!(step(ctx.runtime.inspect(&spec.runtime_name)).await.unwrap(), ContainerState::Gone);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn environment_working_directory_entry_point_and_labels() {
    with_engine("env", |ctx| async move {
        let spec = ContainerSpec {
            environment: vec![("GREETING".into(), "hello world".into()), ("EMPTY".into(), String::new())],
            working_directory: Some("/srv/app".into()),
            labels: BTreeMap::from([("lookout.task-arn".to_string(), "arn:aws:ecs:test".to_string())]),
            ..ctx.spec("c", &["sh", "-c", "echo \"$GREETING|$(pwd)|${EMPTY-unset}|\""])
        };
        let (id, lines, status) = ctx.run(&spec).await;
        assert_eq!(status.exit_code, Some(0));
        assert_eq!(texts(&lines, OutputStream::Stdout), ["hello world|/srv/app||"]);

        // The labels are on the container, for a restarted lookout to find it by.
        let docker = match &ctx.host {
            DockerHost::Unix(path) => {
                bollard::Docker::connect_with_unix(path.to_str().unwrap(), 30, bollard::API_DEFAULT_VERSION)
            }
            DockerHost::Tcp(addr) => {
                bollard::Docker::connect_with_http(&format!("http://{addr}"), 30, bollard::API_DEFAULT_VERSION)
            }
        }
        .unwrap()
        .negotiate_version()
        .await
        .unwrap();
        let inspected = docker.inspect_container(&id, None).await.unwrap();
        let labels = inspected.config.and_then(|c| c.labels).unwrap_or_default();
        assert_eq!(labels.get("lookout.task-arn").map(String::as_str), Some("arn:aws:ecs:test"), "{labels:?}");

        // An entry point replaces the image's (busybox itself here).
        let spec = ContainerSpec {
            entry_point: Some(vec!["/bin/busybox".into(), "echo".into()]),
            command: Some(vec!["via".into(), "entry point".into()]),
            ..ctx.spec("ep", &[])
        };
        let (_, lines, status) = ctx.run(&spec).await;
        assert_eq!(status.exit_code, Some(0));
        assert_eq!(texts(&lines, OutputStream::Stdout), ["via entry point"]);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lines_arrive_while_the_container_runs() {
    with_engine("live", |ctx| async move {
        let id = ctx.create(&ctx.spec("c", &["sh", "-c", "echo early; sleep 5; echo late"])).await;
        step(ctx.runtime.start(&id)).await.unwrap();
        let mut output = step(ctx.runtime.follow_output(&id, None)).await.unwrap();
        let first = tokio::time::timeout(Duration::from_secs(4), output.recv())
            .await
            .expect("no line within 4 s of start")
            .expect("output ended early");
        assert_eq!(first.line, "early");
        assert!(
            matches!(step(ctx.runtime.inspect(&id)).await.unwrap(), ContainerState::Running { .. }),
            "the first line came only after the container exited"
        );
        let rest = collect(output).await;
        assert_eq!(rest.iter().map(|l| l.line.as_str()).collect::<Vec<_>>(), ["late"]);
        assert_eq!(step(ctx.runtime.wait(&id)).await.unwrap().exit_code, Some(0));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_output_since_skips_earlier_lines() {
    with_engine("since", |ctx| async move {
        // Two seconds apart, so that even whole-second engine stamps (Podman) tell them apart.
        let (id, lines, status) = ctx.run(&ctx.spec("c", &["sh", "-c", "echo first; sleep 2; echo second"])).await;
        assert_eq!(status.exit_code, Some(0));
        assert_eq!(lines.iter().map(|l| l.line.as_str()).collect::<Vec<_>>(), ["first", "second"]);
        let (first, second) = (lines[0].timestamp_ms, lines[1].timestamp_ms);
        assert!(second > first, "{lines:?}");

        let after_first = collect(step(ctx.runtime.follow_output(&id, Some(first + 1))).await.unwrap()).await;
        assert_eq!(after_first, lines[1..]);
        let inclusive = collect(step(ctx.runtime.follow_output(&id, Some(first))).await.unwrap()).await;
        assert_eq!(inclusive, lines);
        let after_all = collect(step(ctx.runtime.follow_output(&id, Some(second + 1))).await.unwrap()).await;
        assert_eq!(after_all, []);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_executables_fail_to_start_or_exit_non_zero() {
    with_engine("badexec", |ctx| async move {
        // An entry point that does not exist: Podman (and Docker) refuse it at start.
        let spec = ContainerSpec { entry_point: Some(vec!["/nonexistent/bin".into()]), ..ctx.spec("ep", &[]) };
        let id = ctx.create(&spec).await;
        match step(ctx.runtime.start(&id)).await {
            Err(RuntimeError::CannotStart(message)) => {
                assert!(message.contains("/nonexistent/bin"), "{message}");
                eprintln!("bad entry point: CannotStart: {message}");
            }
            Ok(()) => {
                let status = step(ctx.runtime.wait(&id)).await.unwrap();
                assert!(status.exit_code != Some(0), "{status:?}");
                eprintln!("bad entry point: started, then exited with {status:?}");
            }
            Err(e) => panic!("expected CannotStart, got {e:?}"),
        }

        // A command busybox does not know: it starts, says so and exits 127.
        let (_, lines, status) = ctx.run(&ctx.spec("applet", &["no-such-applet"])).await;
        assert_eq!(status.exit_code, Some(127), "{status:?}");
        assert!(lines.iter().any(|l| l.line.contains("applet not found")), "{lines:?}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cpu_and_memory_limits_are_applied_or_dropped() {
    with_engine("limits", |ctx| async move {
        let script = "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max; \
                      (cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us 2>/dev/null \
                       || cat /sys/fs/cgroup/cpu.max) | tr '\\n' ' '; echo";
        let spec = ContainerSpec { cpu_units: Some(512), memory_mib: Some(64), ..ctx.spec("c", &["sh", "-c", script]) };
        let dropped_before = ctx.runtime.limits_dropped();
        let (_, lines, status) = ctx.run(&spec).await;
        assert_eq!(status.exit_code, Some(0), "{status:?} {lines:?}");
        if ctx.runtime.limits_dropped() > dropped_before {
            eprintln!("limits: the engine refused them; the container ran without");
            return;
        }
        let out = texts(&lines, OutputStream::Stdout);
        assert_eq!(out.first().copied(), Some("67108864"), "memory limit not in the container's cgroup: {lines:?}");
        let cpu: Vec<f64> = out.get(1).unwrap_or(&"").split_whitespace().map(|v| v.parse().unwrap()).collect();
        assert!(cpu.len() == 2 && (cpu[0] / cpu[1] - 0.5).abs() < 1e-9, "CPU quota not half a CPU: {lines:?}");
        eprintln!("limits: applied (memory {}, cpu quota/period {:?})", out[0], cpu);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_hogs_are_killed() {
    with_engine("oom", |ctx| async move {
        let hog = "x=$(head -c 100000000 /dev/zero | tr '\\0' a); echo survived";
        let spec = ContainerSpec { memory_mib: Some(16), ..ctx.spec("c", &["sh", "-c", hog]) };
        let dropped_before = ctx.runtime.limits_dropped();
        let (_, lines, status) = ctx.run(&spec).await;
        if ctx.runtime.limits_dropped() > dropped_before {
            eprintln!("oom: the engine refused the memory limit; nothing to kill");
            return;
        }
        assert_eq!(status.exit_code, Some(137), "{status:?} {lines:?}");
        assert!(!lines.iter().any(|l| l.line == "survived"));
        // Docker reports the OOM kill; Podman 4.3 with runc on cgroup v1 does not (OOMKilled stays false).
        assert!(status.reason.is_none() || status.reason.as_deref() == Some(OOM_REASON), "{status:?}");
        eprintln!("oom: {status:?}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_states_and_gone_containers() {
    with_engine("states", |ctx| async move {
        let rt = &ctx.runtime;
        let id = ctx.create(&ctx.spec("c", &["sh", "-c", "sleep 2"])).await;
        assert_eq!(step(rt.inspect(&id)).await.unwrap(), ContainerState::Created);
        // wait on a container not yet started keeps waiting (Docker and Podman answer at once).
        let waiting = tokio::time::timeout(Duration::from_millis(800), rt.wait(&id)).await;
        assert!(waiting.is_err(), "wait returned for a container never started: {waiting:?}");
        let before_start = now_ms();
        step(rt.start(&id)).await.unwrap();
        match step(rt.inspect(&id)).await.unwrap() {
            ContainerState::Running { started_at_ms: Some(at) } => {
                assert!((at - before_start).abs() < 5000, "started_at {at} vs {before_start}")
            }
            other => panic!("expected Running with a start time, got {other:?}"),
        }
        let status = step(rt.wait(&id)).await.unwrap();
        assert_eq!(status.exit_code, Some(0));
        assert_eq!(step(rt.inspect(&id)).await.unwrap(), ContainerState::Exited(status));

        step(rt.remove(&id)).await.unwrap();
        assert_eq!(step(rt.inspect(&id)).await.unwrap(), ContainerState::Gone);
        step(rt.remove(&id)).await.expect("removing a gone container is fine");
        assert!(matches!(step(rt.start(&id)).await, Err(RuntimeError::NoSuchContainer(_))));
        assert!(matches!(step(rt.wait(&id)).await, Err(RuntimeError::NoSuchContainer(_))));
        assert!(matches!(step(rt.follow_output(&id, None)).await, Err(RuntimeError::NoSuchContainer(_))));
        assert!(matches!(step(rt.stop(&id, Duration::from_secs(1))).await, Err(RuntimeError::NoSuchContainer(_))));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leftover_container_with_the_same_name_is_replaced() {
    with_engine("rename", |ctx| async move {
        let spec = ctx.spec("c", &["sh", "-c", "echo second"]);
        let first = ctx.create(&spec).await;
        let second = ctx.create(&spec).await;
        assert_ne!(first, second);
        assert_eq!(step(ctx.runtime.inspect(&first)).await.unwrap(), ContainerState::Gone);
        step(ctx.runtime.start(&second)).await.unwrap();
        assert_eq!(step(ctx.runtime.wait(&second)).await.unwrap().exit_code, Some(0));
    })
    .await;
}

/// Not a benchmark: prints how long the engine takes, and fails only if it is absurdly slow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timings() {
    with_engine("timings", |ctx| async move {
        eprintln!("timings: {:?}", ctx.runtime);
        for run in 0..3 {
            let spec = ctx.spec(&format!("c{run}"), &["sh", "-c", "sleep 1"]);
            let began = Instant::now();
            let id = ctx.create(&spec).await;
            let created = began.elapsed();
            step(ctx.runtime.start(&id)).await.unwrap();
            let started = began.elapsed();
            let status = step(ctx.runtime.wait(&id)).await.unwrap();
            let returned = now_ms();
            let finished = status.finished_at_ms.expect("finished_at");
            let lag = returned - finished;
            eprintln!(
                "timings run {run}: create {} ms, create+start {} ms, exit to wait returning {lag} ms",
                created.as_millis(),
                started.as_millis()
            );
            assert!(started < Duration::from_secs(20), "create+start took {started:?}");
            assert!((-1000..5000).contains(&lag), "wait returned {lag} ms after the exit");
        }
    })
    .await;
}
