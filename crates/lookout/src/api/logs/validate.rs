//! Member-level validation with AWS's wording (`1 validation error detected: Value '...' at
//! 'member' failed to satisfy constraint: ...`). botocore checks lengths and ranges client-side
//! but not patterns, so the server checks everything.

use super::error::LogsApiError;

fn violation(value: &str, member: &str, constraint: &str) -> LogsApiError {
    LogsApiError::invalid(format!(
        "1 validation error detected: Value '{value}' at '{member}' failed to satisfy constraint: {constraint}"
    ))
}

pub fn required<'a, T>(value: &'a Option<T>, member: &str) -> Result<&'a T, LogsApiError> {
    value.as_ref().ok_or_else(|| {
        LogsApiError::invalid(format!(
            "1 validation error detected: Value null at '{member}' failed to satisfy constraint: Member must not be null"
        ))
    })
}

fn length(value: &str, member: &str, min: usize, max: usize) -> Result<(), LogsApiError> {
    let n = value.chars().count();
    if n < min {
        return Err(violation(value, member, &format!("Member must have length greater than or equal to {min}")));
    }
    if n > max {
        return Err(violation(value, member, &format!("Member must have length less than or equal to {max}")));
    }
    Ok(())
}

const GROUP_NAME_PATTERN: &str = r"[\.\-_/#A-Za-z0-9]+";

pub fn group_name(value: &str, member: &str) -> Result<(), LogsApiError> {
    length(value, member, 1, 512)?;
    if !value.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-/#".contains(&b)) {
        return Err(violation(
            value,
            member,
            &format!("Member must satisfy regular expression pattern: {GROUP_NAME_PATTERN}"),
        ));
    }
    Ok(())
}

/// CreateLogGroup also refuses the `aws/` prefix AWS reserves for itself.
pub fn new_group_name(value: &str) -> Result<(), LogsApiError> {
    group_name(value, "logGroupName")?;
    if value.starts_with("aws/") {
        return Err(LogsApiError::invalid(format!(
            "Log group name '{value}' is reserved: names starting with aws/ belong to AWS services"
        )));
    }
    Ok(())
}

pub fn stream_name(value: &str, member: &str) -> Result<(), LogsApiError> {
    length(value, member, 1, 512)?;
    if value.contains([':', '*']) {
        return Err(violation(value, member, "Member must satisfy regular expression pattern: [^:*]*"));
    }
    Ok(())
}

pub fn name_prefix(value: &str, member: &str, group: bool) -> Result<(), LogsApiError> {
    if group {
        group_name(value, member)
    } else {
        stream_name(value, member)
    }
}

pub fn int_range(value: i64, member: &str, min: i64, max: i64) -> Result<(), LogsApiError> {
    if value < min {
        return Err(violation(
            &value.to_string(),
            member,
            &format!("Member must have value greater than or equal to {min}"),
        ));
    }
    if value > max {
        return Err(violation(
            &value.to_string(),
            member,
            &format!("Member must have value less than or equal to {max}"),
        ));
    }
    Ok(())
}

pub fn max_length(value: &str, member: &str, max: usize) -> Result<(), LogsApiError> {
    length(value, member, 0, max)
}

pub fn list_length<T>(list: &[T], member: &str, min: usize, max: usize) -> Result<(), LogsApiError> {
    if list.len() < min || list.len() > max {
        let bound = if list.len() < min {
            format!("Member must have length greater than or equal to {min}")
        } else {
            format!("Member must have length less than or equal to {max}")
        };
        return Err(LogsApiError::invalid(format!(
            "1 validation error detected: Value at '{member}' failed to satisfy constraint: {bound}"
        )));
    }
    Ok(())
}

pub fn tags(tags: &std::collections::BTreeMap<String, String>, member: &str) -> Result<(), LogsApiError> {
    if tags.len() > 50 {
        return Err(LogsApiError::invalid(format!(
            "1 validation error detected: Value at '{member}' failed to satisfy constraint: Member must have length less than or equal to 50"
        )));
    }
    for (k, v) in tags {
        length(k, &format!("{member}.key"), 1, 128)?;
        length(v, &format!("{member}.value"), 0, 256)?;
        if k.starts_with("aws:") {
            return Err(LogsApiError::invalid(format!("Tag keys starting with aws: are reserved: {k}")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_names_follow_aws() {
        assert!(group_name("/ecs/my-app_1.#x", "logGroupName").is_ok());
        let e = group_name("bad name", "logGroupName").unwrap_err();
        assert_eq!(e.code, "InvalidParameterException");
        assert_eq!(
            e.message,
            r"1 validation error detected: Value 'bad name' at 'logGroupName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\.\-_/#A-Za-z0-9]+"
        );
        assert!(group_name("", "logGroupName").unwrap_err().message.contains("greater than or equal to 1"));
        assert!(group_name(&"a".repeat(513), "logGroupName").is_err());
        assert!(new_group_name("aws/lambda/x").is_err());
        assert!(new_group_name("/aws/lambda/x").is_ok());
    }

    #[test]
    fn stream_names_refuse_colon_and_star() {
        assert!(stream_name("prefix/container/0123abcd", "logStreamName").is_ok());
        assert!(stream_name("a:b", "logStreamName").is_err());
        assert!(stream_name("a*", "logStreamName").is_err());
        assert!(stream_name("spaces and ünïcode ok", "logStreamName").is_ok());
    }

    #[test]
    fn ranges() {
        assert!(int_range(0, "limit", 1, 50).unwrap_err().message.contains("greater than or equal to 1"));
        assert!(int_range(51, "limit", 1, 50).unwrap_err().message.contains("less than or equal to 50"));
        assert!(int_range(50, "limit", 1, 50).is_ok());
    }
}
