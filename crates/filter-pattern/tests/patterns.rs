//! Table-driven tests of the whole filter-pattern language: (pattern, message, expected)
//! rows over realistic log lines, and invalid patterns that must be rejected with a
//! message naming the problem.

use lookout_filter::{FilterPattern, PatternKind};

const APACHE_OK: &str = r#"127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326"#;
const APACHE_404: &str = r#"192.168.1.20 - - [25/Mar/2024:10:00:01 +0000] "GET /missing.html HTTP/1.1" 404 512"#;
const APACHE_503: &str = r#"10.0.0.7 - alice [25/Mar/2024:10:00:02 +0000] "POST /api/orders HTTP/1.1" 503 1534"#;
const APACHE_DASH_BYTES: &str = r#"10.0.0.8 - - [25/Mar/2024:10:00:03 +0000] "HEAD /health HTTP/1.1" 304 -"#;

const JSON_ERROR: &str = r#"{"level":"ERROR","message":"listen tcp :8080: bind: address already in use","latency":1532,"user":{"id":42,"name":"alice","email":"alice@example.com","roles":["admin","dev"]},"ok":false,"done":true,"trace":null,"tags":[],"meta":{},"ratio":0.75,"code":"0200","big":1e3,"neg":-12.5,"items":[{"sku":"A-1","qty":2},{"sku":"B-2","qty":10}],"matrix":[[1,2],[3,4]],"odd-key":"yes","with space":"v","eventName":"DescribeInstances"}"#;
const JSON_INFO: &str =
    r#"  {"level":"INFO","message":"request served","latency":12,"user":{"id":7,"name":"bob"},"ok":true,"status":200}"#;

const ECS_INFO: &str = "2024-03-25T10:00:01.123Z INFO [main] c.e.OrderService - Order 123 processed in 45 ms";
const ECS_ERROR: &str = "2024-03-25T10:00:02.456Z ERROR [pool-1] c.e.PaymentClient - Failed to process payment: java.net.SocketTimeoutException: Read timed out";
const LAMBDA_REPORT: &str = "REPORT RequestId: 8f5a6c1e-1b2c-4d3e-9f00-123456789abc\tDuration: 102.25 ms\tBilled Duration: 103 ms\tMemory Size: 128 MB\tMax Memory Used: 71 MB";
const UNAUTHORIZED: &str = "[ERROR 401] UNAUTHORIZED REQUEST from 10.1.2.3";
const AUTHORIZED: &str = "[SUCCESS 200] AUTHORIZED REQUEST from 10.1.2.3";

/// (pattern, message, expected match)
const MATCH_CASES: &[(&str, &str, bool)] = &[
    // ---- match everything ----
    ("", ECS_INFO, true),
    ("", "", true),
    ("   ", ECS_ERROR, true),
    ("\" \"", ECS_ERROR, true),
    ("\" \"", "", true),
    ("\"\"", "x", true),
    ("[...]", APACHE_OK, true),
    ("[..., ...]", "", true),
    // ---- single terms: case-sensitive, whole words ----
    ("ERROR", ECS_ERROR, true),
    ("ERROR", ECS_INFO, false),
    ("error", ECS_ERROR, false),
    ("INFO", ECS_INFO, true),
    ("ERROR", "[ERROR] disk full", true),
    ("ERROR", "ERROR: disk full", true),
    ("ERROR", "level=ERROR, disk full", true),
    ("ERROR", "ERROR", true),
    ("ERROR", "disk full ERROR", true),
    ("ERROR", "ERRORS happened", false),
    ("ERROR", "NOERROR", false),
    ("ERROR", "user_ERROR_x", true),
    ("ERROR", "", false),
    ("AUTHORIZED", UNAUTHORIZED, false),
    ("AUTHORIZED", AUTHORIZED, true),
    ("UNAUTHORIZED", UNAUTHORIZED, true),
    ("401", UNAUTHORIZED, true),
    ("40", UNAUTHORIZED, false),
    ("Order", ECS_INFO, true),
    ("OrderService", ECS_INFO, true),
    ("123", ECS_INFO, true),
    ("12", ECS_INFO, false),
    // unicode neighbours are word characters
    ("café", "un café noir", true),
    ("café", "cafés", false),
    ("ERROR", "éERROR", false),
    ("ERROR", "«ERROR»", true),
    ("Fehler", "Fehler beim Öffnen", true),
    ("日本", "日本語", false),
    ("日本", "日本 語", true),
    // lenient unquoted punctuation
    ("ERROR:", "ERROR: disk full", true),
    ("ERROR:", "ERROR disk full", false),
    ("ERROR:", "xERROR: disk", false),
    ("user_id", "lookup user_id=42", true),
    ("user_id", "lookup user_idx=42", false),
    ("/health", APACHE_DASH_BYTES, true),
    ("10.0.0.8", APACHE_DASH_BYTES, true),
    ("10.0.0.8", "host 110.0.0.8 up", false),
    (r#""HTTP/1.1\"""#, APACHE_404, true),
    ("ms", LAMBDA_REPORT, true),
    ("a*b", "literal a*b here", true),
    ("a*b", "aXb", false),
    // ---- AND ----
    ("ERROR Failed", ECS_ERROR, true),
    ("ERROR Order", ECS_ERROR, false),
    ("Failed ERROR", ECS_ERROR, true),
    ("ERROR   \t  payment", ECS_ERROR, true),
    ("REPORT Duration Billed", LAMBDA_REPORT, true),
    // ---- quoted phrases ----
    ("\"Failed to process\"", ECS_ERROR, true),
    ("\"Failed to  process\"", ECS_ERROR, false),
    ("\"failed to process\"", ECS_ERROR, false),
    ("\"to process\"", ECS_ERROR, true),
    ("\"o process\"", ECS_ERROR, false),
    ("\"Read timed out\"", ECS_ERROR, true),
    ("\"Read timed ou\"", ECS_ERROR, false),
    ("\"UNAUTHORIZED REQUEST\"", UNAUTHORIZED, true),
    ("\"AUTHORIZED REQUEST\"", UNAUTHORIZED, false),
    ("\"AUTHORIZED REQUEST\"", AUTHORIZED, true),
    ("\"java.net.SocketTimeoutException\"", ECS_ERROR, true),
    ("\"[main]\"", ECS_INFO, true),
    ("\"main]\"", ECS_INFO, true),
    ("\"GET /apache_pb.gif\"", APACHE_OK, true),
    ("\"Max Memory Used: 71 MB\"", LAMBDA_REPORT, true),
    ("\"Duration: 102.25 ms\"", LAMBDA_REPORT, true),
    ("\"Duration: 102.2\"", LAMBDA_REPORT, false),
    (r#""say \"hi\"""#, r#"bot: say "hi" to all"#, true),
    (r#""say \"hi\"""#, "bot: say hi to all", false),
    (r#""C:\temp""#, r"saved to C:\temp now", true),
    (r#""a\\b""#, r"path a\b", true),
    ("\"ERROR\" \"Failed\"", ECS_ERROR, true),
    ("\"*\"", "rating * stars", true),
    ("\"*\"", "rating stars", false),
    ("\" ERROR \"", "x ERROR y", true),
    ("\" ERROR \"", "ERROR y", false),
    ("ERROR \" \"", ECS_ERROR, true),
    ("ERROR \" \"", ECS_INFO, false),
    // overlapping occurrences of a phrase
    ("\"ab ab\"", "xab ab ab", true),
    ("\"ab ab\"", "xab abx", false),
    // ---- OR ----
    ("?ERROR ?WARN", ECS_ERROR, true),
    ("?ERROR ?WARN", "WARN low disk", true),
    ("?ERROR ?WARN", ECS_INFO, false),
    ("?ERROR", ECS_ERROR, true),
    ("?ERROR", ECS_INFO, false),
    ("?\"Failed to process\" ?\"timed out\"", ECS_ERROR, true),
    ("?\"Order 124\" ?\"Order 123\"", ECS_INFO, true),
    ("?\"Order 124\" ?\"Order 125\"", ECS_INFO, false),
    ("?\" \" ?ERROR", ECS_INFO, true),
    // ---- exclusion ----
    ("ERROR -WARN", ECS_ERROR, true),
    ("ERROR -payment", ECS_ERROR, false),
    ("ERROR -Payment", ECS_ERROR, true),
    ("-DEBUG", ECS_INFO, true),
    ("-INFO", ECS_INFO, false),
    ("-INFO", "", true),
    ("-\"Failed to process\"", ECS_ERROR, false),
    ("-\"Failed to process\"", ECS_INFO, true),
    ("ERROR -\"timed out\"", ECS_ERROR, false),
    ("ERROR -\"timed in\"", ECS_ERROR, true),
    ("ERROR -\"timed out\"", "ERROR request timed out", false),
    ("-AUTHORIZED", UNAUTHORIZED, true),
    ("-AUTHORIZED", AUTHORIZED, false),
    // ---- mixes: all plain AND (at least one ?) AND NOT any - ----
    ("ERROR ?timeout ?refused", "ERROR connect timeout", true),
    ("ERROR ?timeout ?refused", "ERROR connect refused", true),
    ("ERROR ?timeout ?refused", "ERROR connect reset", false),
    ("ERROR ?timeout ?refused", "WARN connect timeout", false),
    ("?ERROR ?WARN -health", "WARN disk", true),
    ("?ERROR ?WARN -health", "WARN health check failed", false),
    ("?ERROR ?WARN -health", "INFO ok", false),
    ("REPORT ?Duration -Init", LAMBDA_REPORT, true),
    ("REPORT ?Duration -Billed", LAMBDA_REPORT, false),
    ("-DEBUG -TRACE", ECS_INFO, true),
    ("-DEBUG -TRACE", "TRACE enter", false),
    // ---- regex as a whole pattern / term ----
    ("%AUTHORIZED%", UNAUTHORIZED, true),
    ("%AUTHORIZED%", AUTHORIZED, true),
    ("%^\\[ERROR%", UNAUTHORIZED, true),
    ("%^\\[ERROR%", AUTHORIZED, false),
    ("%REQUEST$%", UNAUTHORIZED, false),
    ("%10\\.1\\.2\\.3$%", UNAUTHORIZED, true),
    ("%\\d{1,3}\\.\\d{1,3}\\.\\d{1,3}\\.\\d{1,3}%", APACHE_OK, true),
    ("%\\d{1,3}\\.\\d{1,3}\\.\\d{1,3}\\.\\d{1,3}%", ECS_INFO, false),
    ("%[Ee]rror|[Ff]ail%", ECS_ERROR, true),
    ("%[Ee]rror|[Ff]ail%", ECS_INFO, false),
    ("%colou?r%", "favourite color: red", true),
    ("%a{3,5}%", "baaab", true),
    ("%a{3,5}%", "baab", false),
    ("%Duration: 10[0-9].[0-9]+ ms%", LAMBDA_REPORT, true),
    ("%bind: address%", JSON_ERROR, true),
    ("%#=@/;,-%", "weird #=@/;,- tokens", true),
    ("ERROR %timed? out%", ECS_ERROR, true),
    ("INFO %timed? out%", ECS_ERROR, false),
    ("?%^START% ?%^REPORT%", LAMBDA_REPORT, true),
    ("?%^START% ?%^END%", LAMBDA_REPORT, false),
    ("ERROR -%Timeout%", ECS_ERROR, false),
    ("ERROR -%Timeout%", "ERROR disk", true),
    // ---- JSON: strings ----
    ("{ $.level = \"ERROR\" }", JSON_ERROR, true),
    ("{ $.level = \"ERROR\" }", JSON_INFO, false),
    ("{$.level=\"ERROR\"}", JSON_ERROR, true),
    ("{ $.level = ERROR }", JSON_ERROR, true),
    ("{ $.level = \"error\" }", JSON_ERROR, false),
    ("{ $.level != \"ERROR\" }", JSON_INFO, true),
    ("{ $.level != \"ERROR\" }", JSON_ERROR, false),
    ("{ $.level != INFO }", JSON_ERROR, true),
    ("{ $.eventName = \"Describe*\" }", JSON_ERROR, true),
    ("{ $.eventName = Describe* }", JSON_ERROR, true),
    ("{ $.eventName = *Instances }", JSON_ERROR, true),
    ("{ $.eventName = *Instance }", JSON_ERROR, false),
    ("{ $.eventName = *scribeInst* }", JSON_ERROR, true),
    ("{ $.eventName = D*Inst*s }", JSON_ERROR, true),
    ("{ $.eventName = \"*\" }", JSON_ERROR, true),
    ("{ $.eventName = * }", JSON_ERROR, true),
    ("{ $.eventName != Describe* }", JSON_ERROR, false),
    ("{ $.message = \"*bind: address*\" }", JSON_ERROR, true),
    ("{ $.message = \"bind: address\" }", JSON_ERROR, false),
    ("{ $.user.email = \"alice@example.com\" }", JSON_ERROR, true),
    ("{ $.user.email = alice@example.com }", JSON_ERROR, true),
    ("{ $.user.name = alice }", JSON_ERROR, true),
    ("{ $.user.name = alice }", JSON_INFO, false),
    ("{ $.user.name = \"ali\\*\" }", JSON_ERROR, false),
    ("{ $.code = \"0200\" }", JSON_ERROR, true),
    ("{ $.code = 0200* }", JSON_ERROR, true),
    // ---- JSON: numbers ----
    ("{ $.latency = 1532 }", JSON_ERROR, true),
    ("{ $.latency = 1532.0 }", JSON_ERROR, true),
    ("{ $.latency = 1.532e3 }", JSON_ERROR, true),
    ("{ $.latency != 1532 }", JSON_ERROR, false),
    ("{ $.latency != 1532 }", JSON_INFO, true),
    ("{ $.latency > 1000 }", JSON_ERROR, true),
    ("{ $.latency > 1000 }", JSON_INFO, false),
    ("{ $.latency < 50 }", JSON_INFO, true),
    ("{ $.latency <= 12 }", JSON_INFO, true),
    ("{ $.latency >= 12 }", JSON_INFO, true),
    ("{ $.latency >= 13 }", JSON_INFO, false),
    ("{ $.latency > 1e3 }", JSON_ERROR, true),
    ("{ $.latency > 10e3 }", JSON_ERROR, false),
    ("{ $.latency < 1.6E+3 }", JSON_ERROR, true),
    ("{ $.big = 1000 }", JSON_ERROR, true),
    ("{ $.big = 10e2 }", JSON_ERROR, true),
    ("{ $.neg = -12.5 }", JSON_ERROR, true),
    ("{ $.neg < -12 }", JSON_ERROR, true),
    ("{ $.neg > -1.25e1 }", JSON_ERROR, false),
    ("{ $.ratio > 0.5 }", JSON_ERROR, true),
    ("{ $.ratio < .8 }", JSON_ERROR, true),
    ("{ $.ratio = 0.75 }", JSON_ERROR, true),
    ("{ $.ratio = 0.7* }", JSON_ERROR, true),
    ("{ $.latency = 15* }", JSON_ERROR, true),
    ("{ $.latency = \"1532\" }", JSON_ERROR, true),
    ("{ $.latency = %^15% }", JSON_ERROR, true),
    ("{ $.status = 2* }", JSON_INFO, true),
    ("{ $.status = 4* }", JSON_INFO, false),
    // numeric comparisons on strings holding numbers
    ("{ $.code = 200 }", JSON_ERROR, true),
    ("{ $.code > 199 }", JSON_ERROR, true),
    ("{ $.level > 1 }", JSON_ERROR, false),
    ("{ $.level = 1 }", JSON_ERROR, false),
    ("{ $.level != 1 }", JSON_ERROR, true),
    // ---- JSON: nesting, arrays, odd keys ----
    ("{ $.user.id = 42 }", JSON_ERROR, true),
    ("{ $.user.id = 42 }", JSON_INFO, false),
    ("{ $.user.roles[0] = \"admin\" }", JSON_ERROR, true),
    ("{ $.user.roles[1] = dev }", JSON_ERROR, true),
    ("{ $.user.roles[1] = admin }", JSON_ERROR, false),
    ("{ $.user.roles[2] = admin }", JSON_ERROR, false),
    ("{ $.items[1].sku = \"B-2\" }", JSON_ERROR, true),
    ("{ $.items[1].qty >= 10 }", JSON_ERROR, true),
    ("{ $.items[0].qty >= 10 }", JSON_ERROR, false),
    ("{ $.matrix[1][0] = 3 }", JSON_ERROR, true),
    ("{ $.matrix[0][1] = 3 }", JSON_ERROR, false),
    ("{ $.['odd-key'] = yes }", JSON_ERROR, true),
    ("{ $['odd-key'] = yes }", JSON_ERROR, true),
    ("{ $.odd-key = yes }", JSON_ERROR, true),
    ("{ $[\"with space\"] = v }", JSON_ERROR, true),
    // selectors landing on objects/arrays never match a comparison
    ("{ $.user = \"*\" }", JSON_ERROR, false),
    ("{ $.user != \"x\" }", JSON_ERROR, false),
    ("{ $.tags = \"*\" }", JSON_ERROR, false),
    ("{ $.items != 1 }", JSON_ERROR, false),
    ("{ $.meta IS NULL }", JSON_ERROR, false),
    // missing fields: no comparison matches, not even !=
    ("{ $.missing = \"x\" }", JSON_ERROR, false),
    ("{ $.missing != \"x\" }", JSON_ERROR, false),
    ("{ $.missing != 1 }", JSON_ERROR, false),
    ("{ $.missing < 1 }", JSON_ERROR, false),
    ("{ $.level.inner = ERROR }", JSON_ERROR, false),
    ("{ $.user[0] = 1 }", JSON_ERROR, false),
    ("{ $.user.roles.first = admin }", JSON_ERROR, false),
    // ---- JSON: IS NULL / NOT EXISTS / IS TRUE / IS FALSE ----
    ("{ $.trace IS NULL }", JSON_ERROR, true),
    ("{ $.level IS NULL }", JSON_ERROR, false),
    ("{ $.missing IS NULL }", JSON_ERROR, false),
    ("{ $.trace is null }", JSON_ERROR, true),
    ("{ $.trace = \"null\" }", JSON_ERROR, false),
    ("{ $.trace != \"x\" }", JSON_ERROR, true),
    ("{ $.missing NOT EXISTS }", JSON_ERROR, true),
    ("{ $.trace NOT EXISTS }", JSON_ERROR, false),
    ("{ $.user NOT EXISTS }", JSON_ERROR, false),
    ("{ $.tags NOT EXISTS }", JSON_ERROR, false),
    ("{ $.user.roles[5] NOT EXISTS }", JSON_ERROR, true),
    ("{ $.level.x NOT EXISTS }", JSON_ERROR, true),
    ("{ $.status NOT EXISTS }", JSON_ERROR, true),
    ("{ $.status NOT EXISTS }", JSON_INFO, false),
    ("{ $.done IS TRUE }", JSON_ERROR, true),
    ("{ $.ok IS TRUE }", JSON_ERROR, false),
    ("{ $.ok IS FALSE }", JSON_ERROR, true),
    ("{ $.ok IS FALSE }", JSON_INFO, false),
    ("{ $.level IS TRUE }", JSON_ERROR, false),
    ("{ $.missing IS FALSE }", JSON_ERROR, false),
    ("{ $.ok = false }", JSON_ERROR, true),
    ("{ $.ok = true }", JSON_INFO, true),
    ("{ $.ok != true }", JSON_ERROR, true),
    ("{ $.ok = 1 }", JSON_INFO, false),
    // ---- JSON: && || parentheses ----
    ("{ $.level = ERROR && $.latency > 1000 }", JSON_ERROR, true),
    ("{ $.level = ERROR && $.latency > 2000 }", JSON_ERROR, false),
    ("{ $.level = WARN || $.latency > 1000 }", JSON_ERROR, true),
    ("{ $.level = WARN || $.latency > 2000 }", JSON_ERROR, false),
    // && binds tighter: true || (false && false)
    ("{ $.level = ERROR || $.level = WARN && $.ok IS TRUE }", JSON_ERROR, true),
    // (true || false) && false
    ("{ ($.level = ERROR || $.level = WARN) && $.ok IS TRUE }", JSON_ERROR, false),
    // false && x || true
    ("{ $.level = WARN && $.ok IS TRUE || $.user.id = 42 }", JSON_ERROR, true),
    ("{ ($.user.id = 1) && ($.user.name = \"bob\") }", JSON_INFO, false),
    ("{ ($.user.id = 7) && ($.user.name = \"bob\") }", JSON_INFO, true),
    ("{ ((($.user.id = 7))) }", JSON_INFO, true),
    ("{ ($.level = INFO || $.level = ERROR) && ($.latency < 20 || $.latency > 1500) }", JSON_INFO, true),
    ("{ ($.level = INFO || $.level = ERROR) && ($.latency < 20 || $.latency > 1500) }", JSON_ERROR, true),
    ("{ ($.level = INFO || $.level = ERROR) && ($.latency < 10 || $.latency > 1600) }", JSON_ERROR, false),
    ("{ $.missing NOT EXISTS && $.trace IS NULL && $.done IS TRUE }", JSON_ERROR, true),
    ("{$.a=1||$.user.id=42}", JSON_ERROR, true),
    // ---- JSON: regex values ----
    ("{ $.message = %bind: address% }", JSON_ERROR, true),
    ("{ $.message = %^listen% }", JSON_ERROR, true),
    ("{ $.message = %^bind% }", JSON_ERROR, false),
    ("{ $.message != %timeout% }", JSON_ERROR, true),
    ("{ $.user.name = %^a.{3}e$% }", JSON_ERROR, true),
    ("{ $.level = %ERR% && $.message = %in use$% }", JSON_ERROR, true),
    ("{ $.done = %^tr% }", JSON_ERROR, true),
    ("{ $.trace = %.*% }", JSON_ERROR, false),
    // ---- JSON: messages that are not JSON objects ----
    ("{ $.level = ERROR }", ECS_ERROR, false),
    ("{ $.level NOT EXISTS }", ECS_ERROR, false),
    ("{ $.level NOT EXISTS }", "[1,2,3]", false),
    ("{ $.level NOT EXISTS }", "{}", true),
    ("{ $.level NOT EXISTS }", "", false),
    ("{ $.level = ERROR }", "{\"level\":\"ERROR\"", false),
    ("{ $.level = ERROR }", "{\"level\":\"ERROR\"} trailing", false),
    ("{ $.level = ERROR }", "{\"level\":\"ERROR\"}\n", true),
    ("{ $.level = ERROR }", "\"ERROR\"", false),
    ("{ $.a = 1 }", "{\"a\":1,\"a\":2}", false),
    ("{ $.a = é* }", "{\"a\":\"été\"}", true),
    ("{ $.['ключ'] = значение }", "{\"ключ\":\"значение\"}", true),
    // ---- space-delimited ----
    ("[ip, user, username, timestamp, request, status_code, bytes]", APACHE_OK, true),
    ("[ip, user, username, timestamp, request, status_code]", APACHE_OK, false),
    ("[ip, user, username, timestamp, request, status_code, bytes, extra]", APACHE_OK, false),
    ("[ip, user, username, timestamp, request, status_code = 404, bytes]", APACHE_404, true),
    ("[ip, user, username, timestamp, request, status_code = 404, bytes]", APACHE_OK, false),
    ("[ip, user, username, timestamp, request, status_code = 4*, bytes]", APACHE_404, true),
    ("[ip, user, username, timestamp, request, status_code = 4*, bytes]", APACHE_503, false),
    ("[ip, user, username, timestamp, request = \"*html*\", status_code = 4*, bytes]", APACHE_404, true),
    ("[ip, user, username, timestamp, request = \"*gif*\", status_code = 4*, bytes]", APACHE_404, false),
    ("[ip, user, username, timestamp, request = \"GET /apache_pb.gif HTTP/1.0\", ...]", APACHE_OK, true),
    ("[ip, user, username = frank, ...]", APACHE_OK, true),
    ("[ip, user, username = \"frank\", ...]", APACHE_OK, true),
    ("[ip, user, username != frank, ...]", APACHE_OK, false),
    ("[ip, user = -, ...]", APACHE_OK, true),
    ("[ip = 127.0.0.1, ...]", APACHE_OK, true),
    ("[ip = 127.*, ...]", APACHE_OK, true),
    ("[ip = 10.*, ...]", APACHE_OK, false),
    ("[ip, user, username, timestamp = \"10/Oct/2000:13:55:36 -0700\", ...]", APACHE_OK, true),
    ("[ip, user, username, timestamp = 10/Oct/2000*, ...]", APACHE_OK, true),
    ("[..., status_code, bytes > 1000]", APACHE_OK, true),
    ("[..., status_code, bytes > 1000]", APACHE_404, false),
    ("[..., status_code, bytes > 1000]", APACHE_DASH_BYTES, false),
    ("[..., status_code, bytes != 512]", APACHE_DASH_BYTES, true),
    ("[..., bytes = -]", APACHE_DASH_BYTES, true),
    ("[..., status_code >= 500, bytes]", APACHE_503, true),
    ("[..., status_code >= 500, bytes]", APACHE_404, false),
    ("[..., status_code < 300, bytes]", APACHE_OK, true),
    ("[..., status_code <= 304, bytes]", APACHE_DASH_BYTES, true),
    ("[..., status_code = 404 || status_code = 410, bytes]", APACHE_404, true),
    ("[..., status_code = 404 || status_code = 410, bytes]", APACHE_503, false),
    ("[ip, user, ..., status_code = 4* || status_code = 5*, bytes]", APACHE_503, true),
    ("[ip, user, ..., status_code = 4* || status_code = 5*, bytes]", APACHE_OK, false),
    ("[..., status_code >= 200 && status_code < 300, bytes]", APACHE_OK, true),
    ("[..., status_code >= 200 && status_code < 300, bytes]", APACHE_404, false),
    ("[..., (status_code >= 500 && status_code < 600) || status_code = 404, bytes]", APACHE_404, true),
    ("[..., (status_code >= 500 && status_code < 600) || status_code = 404, bytes]", APACHE_503, true),
    ("[..., (status_code >= 500 && status_code < 600) || status_code = 404, bytes]", APACHE_OK, false),
    ("[..., status_code = 5* && status_code != 503, bytes]", APACHE_503, false),
    ("[ip, ..., status_code = 503, ...]", APACHE_503, true),
    ("[..., request = \"POST *\", ...]", APACHE_503, true),
    ("[..., request = \"POST *\", ...]", APACHE_404, false),
    ("[..., timestamp = *2024*, ..., status_code = 404, ...]", APACHE_404, true),
    ("[..., timestamp = *2024*, ..., status_code = 404, ...]", APACHE_OK, false),
    ("[ip, ..., user = alice, ..., bytes = 1534]", APACHE_503, true),
    ("[ip, ..., user = bob, ..., bytes = 1534]", APACHE_503, false),
    ("[..., ..., bytes]", APACHE_OK, true),
    ("[a, ..., b]", "one", false),
    ("[a, ..., b]", "one two", true),
    ("[a, ...]", "", false),
    ("[a]", "single", true),
    ("[a]", "   single  ", true),
    ("[a]", "two fields", false),
    ("[a, b]", "", false),
    ("[a = x, b]", "x  \t y", true),
    // quoted/bracketed fields in the message count as one field
    ("[w1, w2, w3]", "\"one two\" [three four] five", true),
    ("[w1 = \"one two\", w2 = \"three four\", w3]", "\"one two\" [three four] five", true),
    ("[w1 = %^one two$%, ...]", "\"one two\" x", true),
    // numeric fields
    ("[..., latency > 100.5 && latency < 1e3]", "GET /x 200 250.75", true),
    ("[..., latency > 100.5 && latency < 1e3]", "GET /x 200 2e3", false),
    ("[..., n = 1e3]", "v 1000", true),
    ("[..., n = -1.5]", "v -1.50", true),
    ("[..., n = 0x10]", "v 0x10", true),
    ("[..., n = 0x10]", "v 16", false),
    // regex in space-delimited fields
    ("[ip, user, username, timestamp, request = %^GET|^POST%, ...]", APACHE_503, true),
    ("[ip, user, username, timestamp, request = %^GET|^POST%, ...]", APACHE_DASH_BYTES, false),
    ("[ip = %^10\\.%, ..., status_code = %^5[0-9]{2}$%, bytes]", APACHE_503, true),
    ("[ip = %^10\\.%, ..., status_code = %^5[0-9]{2}$%, bytes]", APACHE_404, false),
    ("[..., status_code != %^2%, bytes]", APACHE_404, true),
    ("[a = %^x,y$%, ...]", "x,y z", true),
    ("[a = %[0-9]%]", "abc7", true),
    ("[a = %[0-9]%]", "abc", false),
    ("{ $.a = %^x{2}$% }", "{\"a\":\"xx\"}", true),
    ("{ $.a = %^x{2}$% }", "{\"a\":\"xxx\"}", false),
    ("{ $.a = \"50%\" }", "{\"a\":\"50%\"}", true),
    ("[a = \"x,y\", b]", "x,y z", true),
    // ECS / Lambda style lines
    ("[timestamp, level = ERROR, thread, logger, dash, ...]", ECS_ERROR, true),
    ("[timestamp, level = ERROR, thread, logger, dash, ...]", ECS_INFO, false),
    ("[timestamp, level, thread = main, ...]", ECS_INFO, true),
    ("[..., duration, unit = ms]", ECS_INFO, true),
    ("[type = REPORT, ...]", LAMBDA_REPORT, true),
];

#[test]
fn match_table() {
    let mut failures = Vec::new();
    for (pattern, message, expected) in MATCH_CASES {
        match FilterPattern::parse(pattern) {
            Ok(compiled) => {
                let got = compiled.matches(message);
                if got != *expected {
                    failures.push(format!("{pattern:?} on {message:?}: expected {expected}, got {got}"));
                }
            }
            Err(e) => failures.push(format!("{pattern:?} failed to parse: {e}")),
        }
    }
    assert!(failures.is_empty(), "{} of {} rows failed:\n{}", failures.len(), MATCH_CASES.len(), failures.join("\n"));
}

/// (invalid pattern, fragment the error message must contain)
const INVALID_CASES: &[(&str, &str)] = &[
    // terms
    ("\"unterminated", "unterminated quoted phrase"),
    ("ERROR \"Failed to", "unterminated quoted phrase"),
    ("\"abc\"def", "expected a space after the term"),
    ("?", "'?' must be followed by a term"),
    ("-", "'-' must be followed by a term"),
    ("ERROR ?", "'?' must be followed by a term"),
    ("ERROR - WARN", "'-' must be followed by a term"),
    ("??ERROR", "'?' cannot be followed by '?'"),
    ("?-ERROR", "'?' cannot be followed by '-'"),
    ("--verbose", "'-' cannot be followed by '-'"),
    ("-\" \"", "excluded phrase cannot be blank"),
    ("ERROR {", "unexpected '{'"),
    ("ERROR [x]", "unexpected '['"),
    ("ERROR }", "unexpected '}'"),
    ("ERROR]", "unexpected ']'"),
    ("foo(bar)", "unexpected '('"),
    ("ERR\"OR", "unexpected '\"'"),
    ("50%", "unexpected '%'"),
    ("ERROR && WARN", "'&&' can only be used inside"),
    ("ERROR || WARN", "'||' can only be used inside"),
    // regex
    ("%(a|b)%", "groups '(' ')' are not supported"),
    ("%a)%", "groups '(' ')' are not supported"),
    ("%%", "empty regular expression"),
    ("%abc", "unterminated regular expression"),
    ("%abc!%", "'!' is not allowed in a regular expression"),
    ("%naïve%", "multi-byte character"),
    ("%a{2%", "invalid regular expression"),
    ("%[b-a]%", "invalid regular expression"),
    ("%\\q%", "invalid regular expression"),
    ("%a% %b% %c%", "at most 2 regular expressions"),
    ("{ $.a = %x% || $.b = %y% || $.c = %z% }", "at most 2 regular expressions"),
    ("[a = %x%, b = %y%, c = %z%]", "at most 2 regular expressions"),
    ("%abc%def", "expected a space after the term"),
    // JSON structure
    ("{", "expected a condition"),
    ("{ }", "expected a condition"),
    ("{ $.a = 1", "unterminated JSON pattern"),
    ("{ $.a = 1 } extra", "unexpected text after the closing '}'"),
    ("{ $.a = 1 }}", "unexpected text after the closing '}'"),
    ("{ a = 1 }", "expected a selector starting with '$'"),
    ("{ $ = 1 }", "expected '.field' or '[index]' after '$'"),
    ("{ $. = 1 }", "expected a field name after '.'"),
    ("{ $.a..b = 1 }", "expected a field name after '.'"),
    ("{ $.* = 1 }", "wildcard selectors"),
    ("{ $.a[*] = 1 }", "wildcard selectors"),
    ("{ $.a[x] = 1 }", "expected an array index or a quoted field name"),
    ("{ $.a[-1] = 1 }", "expected an array index or a quoted field name"),
    ("{ $.a[0 = 1 }", "expected ']'"),
    ("{ $.a[99999999999999999999999] = 1 }", "array index is too large"),
    ("{ $.['abc = 1 }", "unterminated quoted field name"),
    ("{ $.a# = 1 }", "unexpected '#' in selector"),
    ("{ $.a }", "expected a comparison operator"),
    ("{ $.a ~ 1 }", "expected a comparison operator"),
    ("{ $.a EXISTS }", "expected a comparison operator"),
    ("{ $.a = }", "expected a value after '='"),
    ("{ $.a != }", "expected a value after '!='"),
    ("{ $.a = && $.b = 1 }", "expected a value after '='"),
    ("{ $.a == 1 }", "unexpected '='"),
    ("{ $.a => 1 }", "unexpected '>'"),
    ("{ $.a > }", "expected a value after '>'"),
    ("{ $.a > abc }", "expected a number after '>'"),
    ("{ $.a >= \"5\" }", "expected a number after '>='"),
    ("{ $.a < %5% }", "regular expression can only follow '=' or '!='"),
    ("{ $.a = 1e999 }", "out of range"),
    ("{ $.a = \"abc }", "unterminated quoted value"),
    ("{ $.a = 1 $.b = 2 }", "expected '&&', '||' or '}'"),
    ("{ $.a = 1 & $.b = 2 }", "expected '&&', '||' or '}'"),
    ("{ $.a = 1 | $.b = 2 }", "expected '&&', '||' or '}'"),
    ("{ $.a = 1 && }", "expected a condition"),
    ("{ || $.a = 1 }", "expected a selector starting with '$'"),
    ("{ ($.a = 1 }", "unbalanced parentheses (missing ')')"),
    ("{ $.a = 1) }", "unbalanced parentheses (unexpected ')')"),
    ("[a = 1)]", "unbalanced parentheses (unexpected ')')"),
    ("{ () }", "unbalanced parentheses (unexpected ')')"),
    ("{ ($.a = 1 $.b = 2) }", "expected '&&', '||' or ')'"),
    ("{ $.a IS }", "expected NULL, TRUE or FALSE after IS"),
    ("{ $.a IS MAYBE }", "expected NULL, TRUE or FALSE after IS"),
    ("{ $.a NOT NULL }", "expected EXISTS after NOT"),
    ("{ $.a = x\"y\" }", "expected '&&', '||' or '}'"),
    ("{ $.a = [1] }", "expected a value after '='"),
    // space-delimited structure
    ("[]", "empty space-delimited pattern"),
    ("[ ]", "empty space-delimited pattern"),
    ("[", "expected a field name or '...'"),
    ("[a, b", "unterminated space-delimited pattern"),
    ("[a b]", "expected ',' or ']'"),
    ("[a,]", "expected a field name or '...'"),
    ("[a,,b]", "expected a field name or '...'"),
    ("[, a]", "expected a field name or '...'"),
    ("[a] extra", "unexpected text after the closing ']'"),
    ("[a]]", "unexpected text after the closing ']'"),
    ("[....]", "expected ',' or ']'"),
    ("[..]", "expected a field name or '...'"),
    ("[a-b]", "expected ',' or ']'"),
    ("[a = ]", "expected a value after '='"),
    ("[a =, b]", "expected a value after '='"),
    ("[a > x]", "expected a number after '>'"),
    ("[a = 1 || b = 2]", "condition on 'b' in the position of field 'a'"),
    ("[a = 1 && a]", "expected a comparison after field 'a'"),
    ("[a || a = 1]", "expected a comparison after field 'a'"),
    ("[(a = 1]", "unbalanced parentheses (missing ')')"),
    ("[(a)]", "expected a comparison after field 'a'"),
    ("[a = \"x]", "unterminated quoted value"),
    ("[a = x\"y\"]", "expected ',' or ']'"),
    ("[a = 1 & a = 2]", "expected ',' or ']'"),
    ("[\"a\"]", "expected a field name or '...'"),
    ("[{ $.a = 1 }]", "expected a field name or '...'"),
];

#[test]
fn invalid_table() {
    let mut failures = Vec::new();
    for (pattern, fragment) in INVALID_CASES {
        match FilterPattern::parse(pattern) {
            Ok(_) => failures.push(format!("{pattern:?} was accepted")),
            Err(e) => {
                let text = e.to_string();
                if !text.starts_with("Invalid filter pattern: ") || !e.message.contains(fragment) {
                    failures.push(format!("{pattern:?}: expected {fragment:?} in {text:?}"));
                }
                if e.message.starts_with(char::is_uppercase) {
                    failures.push(format!("{pattern:?}: message not lowercase: {text:?}"));
                }
                if text.ends_with('.') {
                    failures.push(format!("{pattern:?}: trailing period in {text:?}"));
                }
                if let Some(position) = e.position {
                    let limit = pattern.chars().count() + 1;
                    if position == 0 || position > limit {
                        failures.push(format!("{pattern:?}: position {position} outside 1..={limit}"));
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "{} of {} rows failed:\n{}", failures.len(), INVALID_CASES.len(), failures.join("\n"));
}

#[test]
fn error_positions_point_at_the_problem() {
    let cases: &[(&str, usize)] = &[
        ("ERROR \"Failed to", 7),
        ("{ $.a = }", 9),
        ("{ $.a > abc }", 9),
        ("?", 1),
        ("ERROR {", 7),
        ("[a, b = 1 || c = 2]", 14),
        ("%a(b%", 3),
    ];
    for (pattern, position) in cases {
        let e = FilterPattern::parse(pattern).unwrap_err();
        assert_eq!(e.position, Some(*position), "{pattern:?}: {e}");
    }
    let e = FilterPattern::parse("{ $.a = }").unwrap_err();
    assert_eq!(e.to_string(), "Invalid filter pattern: expected a value after '=' at character 9");
}

#[test]
fn too_long_patterns_are_rejected() {
    let ok = format!("\"{}\"", "a".repeat(1022));
    assert!(FilterPattern::parse(&ok).is_ok());
    let long = format!("\"{}\"", "a".repeat(1023));
    let e = FilterPattern::parse(&long).unwrap_err();
    assert_eq!(e.position, None);
    assert!(e.message.contains("longer than 1024 characters"));
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let deep_json = format!("{{ {}$.a = 1{} }}", "(".repeat(400), ")".repeat(400));
    assert!(FilterPattern::parse(&deep_json).unwrap_err().message.contains("nested deeper"));
    let deep_fields = format!("[{}a = 1{}]", "(".repeat(400), ")".repeat(400));
    assert!(FilterPattern::parse(&deep_fields).unwrap_err().message.contains("nested deeper"));
    let ok = format!("{{ {}$.a = 1{} }}", "(".repeat(30), ")".repeat(30));
    assert!(FilterPattern::parse(&ok).unwrap().matches("{\"a\":1}"));
}

#[test]
fn matches_everything_and_kind() {
    for pattern in ["", "   ", "\t\n", "\" \"", "\"\"", "  \" \"  ", "[...]", "[..., ...]", "\" \" \"\"", "?\" \""] {
        let p = FilterPattern::parse(pattern).unwrap();
        assert!(p.matches_everything(), "{pattern:?}");
        assert_eq!(p.kind(), PatternKind::Everything);
        assert!(p.matches("anything at all") && p.matches(""));
    }
    for pattern in ["ERROR", "-ERROR", "{ $.a NOT EXISTS }", "[a, ...]", "%.%", "?\" \" ERROR"] {
        assert!(!FilterPattern::parse(pattern).unwrap().matches_everything(), "{pattern:?}");
    }
}

#[test]
fn required_terms() {
    let cases: &[(&str, &[&str])] = &[
        ("ERROR", &["ERROR"]),
        ("ERROR Failed", &["ERROR", "Failed"]),
        ("\"Failed to process\" ERROR", &["Failed", "to", "process", "ERROR"]),
        ("ERROR: user_id", &["ERROR", "user", "id"]),
        ("ERROR -WARN", &["ERROR"]),
        ("ERROR ?a ?b", &["ERROR"]),
        ("?timeout", &["timeout"]),
        ("?a ?b", &[]),
        ("-WARN", &[]),
        ("%ERROR%", &[]),
        ("ERROR %x%", &["ERROR"]),
        ("\"::\"", &[]),
        ("", &[]),
        ("\" \"", &[]),
        ("{ $.level = ERROR }", &[]),
        ("[level = ERROR, ...]", &[]),
    ];
    for (pattern, expected) in cases {
        assert_eq!(FilterPattern::parse(pattern).unwrap().required_terms(), *expected, "{pattern:?}");
    }
}

#[test]
fn field_names_of_space_delimited_patterns() {
    let p = FilterPattern::parse("[ip, user, ..., status_code = 4* || status_code = 5*, bytes]").unwrap();
    assert_eq!(p.field_names(), ["ip", "user", "status_code", "bytes"]);
    assert!(FilterPattern::parse("ERROR").unwrap().field_names().is_empty());
}

#[test]
fn display_and_from_str_round_trip_the_source() {
    let p: FilterPattern = "  ERROR ?WARN ".parse().unwrap();
    assert_eq!(p.as_str(), "  ERROR ?WARN ");
    assert_eq!(p.to_string(), "  ERROR ?WARN ");
}
