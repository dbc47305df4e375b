//! The ECS API (JSON 1.1, `X-Amz-Target: AmazonEC2ContainerServiceV20141113.<Operation>`): the
//! operation enum, request parsing and validation, calls into the task domain, response shapes.
//! The only place that knows this service's wire format.

pub mod dto;
pub mod error;

use axum::body::Bytes;
use lookout_tasks::model;
use lookout_tasks::{DefinitionExtras, ListTasksQuery};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::app::App;
use dto::*;
pub use error::EcsApiError;

pub const TARGET_PREFIX: &str = "AmazonEC2ContainerServiceV20141113";

/// Every operation lookout serves for ECS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EcsOperation {
    CreateCluster,
    DeleteCluster,
    DescribeClusters,
    ListClusters,
    RegisterTaskDefinition,
    DescribeTaskDefinition,
    ListTaskDefinitions,
    ListTaskDefinitionFamilies,
    DeregisterTaskDefinition,
    RunTask,
    DescribeTasks,
    StopTask,
    ListTasks,
}

impl EcsOperation {
    pub const ALL: [(&'static str, EcsOperation); 13] = {
        use EcsOperation::*;
        [
            ("CreateCluster", CreateCluster),
            ("DeleteCluster", DeleteCluster),
            ("DescribeClusters", DescribeClusters),
            ("ListClusters", ListClusters),
            ("RegisterTaskDefinition", RegisterTaskDefinition),
            ("DescribeTaskDefinition", DescribeTaskDefinition),
            ("ListTaskDefinitions", ListTaskDefinitions),
            ("ListTaskDefinitionFamilies", ListTaskDefinitionFamilies),
            ("DeregisterTaskDefinition", DeregisterTaskDefinition),
            ("RunTask", RunTask),
            ("DescribeTasks", DescribeTasks),
            ("StopTask", StopTask),
            ("ListTasks", ListTasks),
        ]
    };

    pub fn parse(name: &str) -> Option<EcsOperation> {
        Self::ALL.iter().find(|(n, _)| *n == name).map(|(_, op)| *op)
    }
}

fn parse<T: DeserializeOwned + Default>(body: &[u8]) -> Result<T, EcsApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| {
        EcsApiError::new("SerializationException", format!("the request body is not a valid request: {e}"))
    })
}

fn to_body<T: Serialize>(value: &T) -> Result<Vec<u8>, EcsApiError> {
    serde_json::to_vec(value).map_err(|e| {
        tracing::error!(error = %e, "response serialization failed");
        EcsApiError::server()
    })
}

fn required<'a>(value: &'a Option<String>, member: &str) -> Result<&'a str, EcsApiError> {
    match value.as_deref() {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(EcsApiError::invalid(format!("{member} can not be blank."))),
    }
}

fn max_results(value: Option<i64>, max: i64) -> Result<usize, EcsApiError> {
    match value {
        None => Ok(max as usize),
        Some(v) if (1..=max).contains(&v) => Ok(v as usize),
        Some(v) => Err(EcsApiError::invalid(format!("maxResults must be between 1 and {max} (got {v})."))),
    }
}

/// One page of a listing; tokens are the offset of the next item.
fn page<T: Clone>(items: &[T], limit: usize, token: Option<&str>) -> Result<(Vec<T>, Option<String>), EcsApiError> {
    super::offset_page(items, limit, token).ok_or_else(|| EcsApiError::invalid("Invalid nextToken."))
}

fn secs(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

fn tags_in(tags: &[Tag]) -> Result<Vec<(String, String)>, EcsApiError> {
    tags.iter()
        .map(|t| match &t.key {
            Some(k) if !k.is_empty() => Ok((k.clone(), t.value.clone().unwrap_or_default())),
            _ => Err(EcsApiError::invalid("Tag keys must not be empty.")),
        })
        .collect()
}

fn tags_out(tags: &[(String, String)]) -> Vec<Tag> {
    tags.iter().map(|(k, v)| Tag { key: Some(k.clone()), value: Some(v.clone()) }).collect()
}

fn env_in(env: &[KeyValuePair]) -> Vec<(String, String)> {
    env.iter().filter_map(|kv| Some((kv.name.clone()?, kv.value.clone().unwrap_or_default()))).collect()
}

fn env_out(env: &[(String, String)]) -> Vec<KeyValuePair> {
    env.iter().map(|(k, v)| KeyValuePair { name: Some(k.clone()), value: Some(v.clone()) }).collect()
}

fn container_definition_in(c: &ContainerDefinition) -> Result<model::ContainerDefinition, EcsApiError> {
    let name = c
        .name
        .clone()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| EcsApiError::client("Container.name should not be null or empty."))?;
    let image = c
        .image
        .clone()
        .filter(|i| !i.is_empty())
        .ok_or_else(|| EcsApiError::client("Container.image should not be null or empty."))?;
    let log_configuration = match &c.log_configuration {
        None => None,
        Some(l) => Some(model::LogConfiguration {
            log_driver: l
                .log_driver
                .clone()
                .ok_or_else(|| EcsApiError::client("LogConfiguration.logDriver should not be null or empty."))?,
            options: l.options.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        }),
    };
    Ok(model::ContainerDefinition {
        name,
        image,
        command: c.command.clone(),
        entry_point: c.entry_point.clone(),
        environment: env_in(&c.environment),
        essential: c.essential,
        cpu: (c.cpu > 0).then_some(c.cpu),
        memory: c.memory,
        memory_reservation: c.memory_reservation,
        stop_timeout: c.stop_timeout,
        working_directory: c.working_directory.clone(),
        health_check: c.health_check.as_ref().map(|h| model::HealthCheck {
            command: h.command.clone(),
            interval: h.interval,
            timeout: h.timeout,
            retries: h.retries,
            start_period: h.start_period,
        }),
        log_configuration,
    })
}

fn container_definition_out(c: &model::ContainerDefinition) -> ContainerDefinition {
    ContainerDefinition {
        name: Some(c.name.clone()),
        image: Some(c.image.clone()),
        command: c.command.clone(),
        entry_point: c.entry_point.clone(),
        environment: env_out(&c.environment),
        essential: Some(c.is_essential()),
        cpu: c.cpu.unwrap_or(0),
        memory: c.memory,
        memory_reservation: c.memory_reservation,
        stop_timeout: c.stop_timeout,
        working_directory: c.working_directory.clone(),
        health_check: c.health_check.as_ref().map(|h| HealthCheck {
            command: h.command.clone(),
            interval: h.interval,
            timeout: h.timeout,
            retries: h.retries,
            start_period: h.start_period,
        }),
        log_configuration: c.log_configuration.as_ref().map(|l| LogConfiguration {
            log_driver: Some(l.log_driver.clone()),
            options: l.options.iter().cloned().collect(),
        }),
        port_mappings: vec![],
        mount_points: vec![],
        volumes_from: vec![],
    }
}

fn definition_out(d: &model::TaskDefinition) -> TaskDefinition {
    TaskDefinition {
        task_definition_arn: d.arn.clone(),
        container_definitions: d.containers.iter().map(container_definition_out).collect(),
        family: d.family.clone(),
        revision: d.revision,
        status: d.status.as_str(),
        cpu: d.cpu.clone(),
        memory: d.memory.clone(),
        network_mode: d.network_mode.clone(),
        requires_compatibilities: d.requires_compatibilities.clone(),
        compatibilities: vec!["EC2", "FARGATE"],
        task_role_arn: d.task_role_arn.clone(),
        execution_role_arn: d.execution_role_arn.clone(),
        volumes: vec![],
        placement_constraints: vec![],
        requires_attributes: vec![],
        registered_at: secs(d.registered_at_ms),
        deregistered_at: d.deregistered_at_ms.map(secs),
    }
}

fn cluster_out(c: &model::Cluster, counts: lookout_tasks::ClusterCounts, status: &'static str) -> Cluster {
    Cluster {
        cluster_arn: c.arn.clone(),
        cluster_name: c.name.clone(),
        status,
        registered_container_instances_count: 0,
        running_tasks_count: counts.running,
        pending_tasks_count: counts.pending,
        active_services_count: 0,
        statistics: vec![],
        tags: tags_out(&c.tags),
        settings: vec![KeyValuePair { name: Some("containerInsights".into()), value: Some("disabled".into()) }],
        capacity_providers: vec![],
        default_capacity_provider_strategy: vec![],
    }
}

fn overrides_in(o: &TaskOverride) -> Result<model::TaskOverrides, EcsApiError> {
    Ok(model::TaskOverrides {
        container_overrides: o
            .container_overrides
            .iter()
            .map(|c| {
                Ok(model::ContainerOverride {
                    name: c
                        .name
                        .clone()
                        .ok_or_else(|| EcsApiError::invalid("Container override name can not be blank."))?,
                    command: c.command.clone(),
                    environment: env_in(&c.environment),
                    cpu: c.cpu,
                    memory: c.memory,
                })
            })
            .collect::<Result<_, EcsApiError>>()?,
        cpu: o.cpu.clone(),
        memory: o.memory.clone(),
    })
}

pub fn task_out(t: &model::Task) -> Task {
    let mut overrides = TaskOverride {
        container_overrides: t
            .overrides
            .container_overrides
            .iter()
            .map(|o| ContainerOverride {
                name: Some(o.name.clone()),
                command: o.command.clone(),
                environment: env_out(&o.environment),
                cpu: o.cpu,
                memory: o.memory,
            })
            .collect(),
        cpu: t.overrides.cpu.clone(),
        memory: t.overrides.memory.clone(),
        inference_accelerator_overrides: vec![],
    };
    // ECS lists every container in the overrides, with only its name when it has none.
    for c in &t.containers {
        if !overrides.container_overrides.iter().any(|o| o.name.as_deref() == Some(&c.name)) {
            overrides.container_overrides.push(ContainerOverride { name: Some(c.name.clone()), ..Default::default() });
        }
    }
    Task {
        task_arn: t.arn.clone(),
        cluster_arn: t.cluster_arn.clone(),
        task_definition_arn: t.task_definition_arn.clone(),
        containers: t
            .containers
            .iter()
            .map(|c| Container {
                container_arn: c.arn.clone(),
                task_arn: t.arn.clone(),
                name: c.name.clone(),
                image: c.image.clone(),
                last_status: c.last_status.as_str(),
                exit_code: c.exit_code,
                reason: c.reason.clone(),
                runtime_id: c.runtime_id.clone(),
                network_bindings: vec![],
                network_interfaces: vec![],
                health_status: "UNKNOWN",
                cpu: c.cpu.unwrap_or(0).to_string(),
                memory: c.memory.map(|m| m.to_string()),
            })
            .collect(),
        last_status: t.last_status.as_str(),
        desired_status: t.desired_status.as_str(),
        launch_type: t.launch_type.clone(),
        platform_version: (t.launch_type == "FARGATE").then_some("1.4.0"),
        availability_zone: "local".into(),
        connectivity: "CONNECTED",
        group: t.group.clone(),
        started_by: t.started_by.clone(),
        cpu: t.cpu.clone(),
        memory: t.memory.clone(),
        overrides,
        created_at: secs(t.created_at_ms),
        pull_started_at: t.pull_started_at_ms.map(secs),
        pull_stopped_at: t.pull_stopped_at_ms.map(secs),
        started_at: t.started_at_ms.map(secs),
        stopping_at: t.stopping_at_ms.map(secs),
        execution_stopped_at: t.execution_stopped_at_ms.map(secs),
        stopped_at: t.stopped_at_ms.map(secs),
        stop_code: t.stop_code.map(|c| c.as_str()),
        stopped_reason: t.stopped_reason.clone(),
        version: t.version,
        tags: tags_out(&t.tags),
        attachments: vec![],
        enable_execute_command: false,
    }
}

const LAUNCH_TYPES: [&str; 3] = ["EC2", "FARGATE", "EXTERNAL"];

pub async fn handle(app: App, operation: &str, body: Bytes) -> Result<Vec<u8>, EcsApiError> {
    let op = EcsOperation::parse(operation).ok_or_else(|| {
        EcsApiError::new("UnknownOperationException", format!("lookout does not serve the ECS operation {operation:?}"))
    })?;
    let tasks = &app.tasks;
    match op {
        EcsOperation::CreateCluster => {
            let r: CreateClusterRequest = parse(&body)?;
            let c = tasks.create_cluster(r.cluster_name.as_deref(), tags_in(&r.tags)?).await?;
            to_body(&ClusterResponse { cluster: cluster_out(&c, Default::default(), "ACTIVE") })
        }
        EcsOperation::DeleteCluster => {
            let r: ClusterRef = parse(&body)?;
            let c = tasks.delete_cluster(required(&r.cluster, "cluster")?).await?;
            to_body(&ClusterResponse { cluster: cluster_out(&c, Default::default(), "INACTIVE") })
        }
        EcsOperation::DescribeClusters => {
            let r: DescribeClustersRequest = parse(&body)?;
            if r.clusters.len() > 100 {
                return Err(EcsApiError::invalid("At most 100 clusters can be described at a time."));
            }
            let (found, missing) = tasks.describe_clusters(&r.clusters);
            to_body(&DescribeClustersResponse {
                clusters: found.iter().map(|(c, n)| cluster_out(c, *n, "ACTIVE")).collect(),
                failures: missing
                    .into_iter()
                    .map(|m| {
                        let arn = if m.starts_with("arn:") { m } else { tasks.identity().cluster_arn(&m) };
                        Failure { arn, reason: "MISSING".into(), detail: None }
                    })
                    .collect(),
            })
        }
        EcsOperation::ListClusters => {
            let r: PageRequest = parse(&body)?;
            let (arns, next) = page(&tasks.list_clusters(), max_results(r.max_results, 100)?, r.next_token.as_deref())?;
            to_body(&ListClustersResponse { cluster_arns: arns, next_token: next })
        }
        EcsOperation::RegisterTaskDefinition => {
            let r: RegisterTaskDefinitionRequest = parse(&body)?;
            let family = required(&r.family, "Family")?.to_owned();
            if r.container_definitions.is_empty() {
                return Err(EcsApiError::client("Container list cannot be empty."));
            }
            let containers =
                r.container_definitions.iter().map(container_definition_in).collect::<Result<Vec<_>, _>>()?;
            let tags = tags_in(&r.tags)?;
            let def = tasks
                .register_definition(
                    &family,
                    containers,
                    DefinitionExtras {
                        cpu: r.cpu,
                        memory: r.memory,
                        network_mode: r.network_mode,
                        requires_compatibilities: r.requires_compatibilities,
                        task_role_arn: r.task_role_arn,
                        execution_role_arn: r.execution_role_arn,
                        tags: tags.clone(),
                    },
                )
                .await?;
            to_body(&TaskDefinitionResponse { task_definition: definition_out(&def), tags: Some(tags_out(&tags)) })
        }
        EcsOperation::DescribeTaskDefinition => {
            let r: TaskDefinitionRef = parse(&body)?;
            let def = tasks.definition(required(&r.task_definition, "taskDefinition")?)?;
            let tags = r.include.iter().any(|i| i == "TAGS").then(|| tags_out(&def.tags));
            to_body(&TaskDefinitionResponse { task_definition: definition_out(&def), tags })
        }
        EcsOperation::DeregisterTaskDefinition => {
            let r: TaskDefinitionRef = parse(&body)?;
            let def = tasks.deregister_definition(required(&r.task_definition, "taskDefinition")?).await?;
            to_body(&TaskDefinitionResponse { task_definition: definition_out(&def), tags: None })
        }
        EcsOperation::ListTaskDefinitions => {
            let r: ListTaskDefinitionsRequest = parse(&body)?;
            let status = definition_status(r.status.as_deref())?;
            let desc = match r.sort.as_deref() {
                None | Some("ASC") => false,
                Some("DESC") => true,
                Some(other) => return Err(EcsApiError::invalid(format!("sort must be ASC or DESC (got {other:?})."))),
            };
            let all = tasks.list_definitions(r.family_prefix.as_deref(), status, desc);
            let (arns, next) = page(&all, max_results(r.max_results, 100)?, r.next_token.as_deref())?;
            to_body(&ListTaskDefinitionsResponse { task_definition_arns: arns, next_token: next })
        }
        EcsOperation::ListTaskDefinitionFamilies => {
            let r: ListTaskDefinitionsRequest = parse(&body)?;
            let status = match r.status.as_deref() {
                Some("ALL") => None,
                other => Some(definition_status(other)?.unwrap_or(model::DefinitionStatus::Active)),
            };
            let all = tasks.list_families(r.family_prefix.as_deref(), status);
            let (families, next) = page(&all, max_results(r.max_results, 100)?, r.next_token.as_deref())?;
            to_body(&ListFamiliesResponse { families, next_token: next })
        }
        EcsOperation::RunTask => {
            let r: RunTaskRequest = parse(&body)?;
            let count = r.count.unwrap_or(1);
            if !(1..=10).contains(&count) {
                return Err(EcsApiError::invalid("Count must be between 1 and 10."));
            }
            if r.started_by.as_ref().is_some_and(|s| s.chars().count() > 128) {
                return Err(EcsApiError::invalid("startedBy must be at most 128 characters."));
            }
            if let Some(lt) = &r.launch_type {
                if !LAUNCH_TYPES.contains(&lt.as_str()) {
                    return Err(EcsApiError::invalid(format!(
                        "launchType must be one of {LAUNCH_TYPES:?} (got {lt:?})."
                    )));
                }
            }
            let request = lookout_tasks::RunTaskRequest {
                cluster: r.cluster,
                task_definition: required(&r.task_definition, "taskDefinition")?.to_owned(),
                count: count as u32,
                overrides: r.overrides.as_ref().map(overrides_in).transpose()?.unwrap_or_default(),
                launch_type: r.launch_type,
                started_by: r.started_by,
                group: r.group,
                tags: tags_in(&r.tags)?,
                client_token: r.client_token,
            };
            let started = tasks.run_task(request).await?;
            to_body(&TasksResponse { tasks: started.iter().map(task_out).collect(), failures: vec![] })
        }
        EcsOperation::DescribeTasks => {
            let r: DescribeTasksRequest = parse(&body)?;
            let refs = r.tasks.ok_or_else(|| EcsApiError::invalid("Tasks cannot be empty."))?;
            if refs.is_empty() {
                return Err(EcsApiError::invalid("Tasks cannot be empty."));
            }
            if refs.len() > 100 {
                return Err(EcsApiError::invalid("At most 100 tasks can be described at a time."));
            }
            let (found, missing) = tasks.describe_tasks(r.cluster.as_deref(), &refs)?;
            let cluster = found.first().map(|t| t.cluster.clone());
            to_body(&TasksResponse {
                tasks: found.iter().map(task_out).collect(),
                failures: missing
                    .into_iter()
                    .map(|m| {
                        let arn = if m.starts_with("arn:") {
                            m
                        } else {
                            let c = r.cluster.as_deref().map(|c| c.rsplit('/').next().unwrap_or(c).to_owned());
                            tasks.identity().task_arn(&c.or(cluster.clone()).unwrap_or_else(|| "default".into()), &m)
                        };
                        Failure { arn, reason: "MISSING".into(), detail: None }
                    })
                    .collect(),
            })
        }
        EcsOperation::StopTask => {
            let r: StopTaskRequest = parse(&body)?;
            if r.reason.as_ref().is_some_and(|s| s.chars().count() > 255) {
                return Err(EcsApiError::invalid("reason must be at most 255 characters."));
            }
            let t = tasks.stop_task(r.cluster.as_deref(), required(&r.task, "task")?, r.reason.as_deref()).await?;
            to_body(&StopTaskResponse { task: task_out(&t) })
        }
        EcsOperation::ListTasks => {
            let r: ListTasksRequest = parse(&body)?;
            let desired = match r.desired_status.as_deref() {
                None => None,
                Some("RUNNING") => Some(model::Status::Running),
                Some("PENDING") => Some(model::Status::Pending),
                Some("STOPPED") => Some(model::Status::Stopped),
                Some(other) => {
                    return Err(EcsApiError::invalid(format!(
                        "desiredStatus must be one of RUNNING, PENDING, STOPPED (got {other:?})."
                    )))
                }
            };
            let q = ListTasksQuery {
                cluster: r.cluster,
                family: r.family,
                started_by: r.started_by,
                desired_status: desired,
                launch_type: r.launch_type,
            };
            let mut all = tasks.list_tasks(&q)?;
            if r.service_name.is_some() || r.container_instance.is_some() {
                // lookout runs no services and no container instances.
                all.clear();
            }
            let (arns, next) = page(&all, max_results(r.max_results, 100)?, r.next_token.as_deref())?;
            to_body(&ListTasksResponse { task_arns: arns, next_token: next })
        }
    }
}

fn definition_status(s: Option<&str>) -> Result<Option<model::DefinitionStatus>, EcsApiError> {
    match s {
        None => Ok(None),
        Some("ACTIVE") => Ok(Some(model::DefinitionStatus::Active)),
        Some("INACTIVE") => Ok(Some(model::DefinitionStatus::Inactive)),
        Some(other) => Err(EcsApiError::invalid(format!("status must be ACTIVE or INACTIVE (got {other:?})."))),
    }
}
