
using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'orderflow' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'orderflow'
        for ($i = 1; $i -lt $commandElements.Count; $i++) {
            $element = $commandElements[$i]
            if ($element -isnot [StringConstantExpressionAst] -or
                $element.StringConstantType -ne [StringConstantType]::BareWord -or
                $element.Value.StartsWith('-') -or
                $element.Value -eq $wordToComplete) {
                break
        }
        $element.Value
    }) -join ';'

    $completions = @(switch ($command) {
        'orderflow' {
            [CompletionResult]::new('--address', '--address', [CompletionResultType]::ParameterName, 'Temporal frontend address; TEMPORAL_HOST_PORT is read too [default: the profile''s, else localhost:7233]')
            [CompletionResult]::new('--namespace', '--namespace', [CompletionResultType]::ParameterName, 'Temporal namespace [default: the profile''s, else default]')
            [CompletionResult]::new('--task-queue', '--task-queue', [CompletionResultType]::ParameterName, 'Task queue the worker polls and orders are sent to [default: orderflow]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Profile to read from the Temporal CLI''s config file')
            [CompletionResult]::new('--config-file', '--config-file', [CompletionResultType]::ParameterName, 'The Temporal CLI''s config file [default: its own, temporal.toml]')
            [CompletionResult]::new('--ui-url', '--ui-url', [CompletionResultType]::ParameterName, 'Web UI base for order links [default: the address''s host, port 8233]')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'How long to wait for Temporal or PostgreSQL to answer before giving up (exit 8)')
            [CompletionResult]::new('--encryption-key-file', '--encryption-key-file', [CompletionResultType]::ParameterName, 'Encrypt every payload sent to Temporal with the keys in this file: one KEY_ID:BASE64_OF_32_BYTES per line, the first encrypts, all decrypt; it must be readable by its owner only')
            [CompletionResult]::new('--api-key', '--api-key', [CompletionResultType]::ParameterName, 'API key for Temporal Cloud; turns TLS on. Never printed')
            [CompletionResult]::new('--tls-cert-path', '--tls-cert-path', [CompletionResultType]::ParameterName, 'Client certificate for mTLS')
            [CompletionResult]::new('--tls-key-path', '--tls-key-path', [CompletionResultType]::ParameterName, 'Client private key for mTLS')
            [CompletionResult]::new('--tls-ca-path', '--tls-ca-path', [CompletionResultType]::ParameterName, 'CA certificate to verify the server with')
            [CompletionResult]::new('--tls-server-name', '--tls-server-name', [CompletionResultType]::ParameterName, 'Server name to verify the certificate against')
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'PostgreSQL URL, postgres://USER:PASSWORD@HOST:PORT/DB; when unset, built from POSTGRES_HOST, POSTGRES_PORT, POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DB. Its password is never printed')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format for data on stdout: text for people, json for scripts, jsonl (JSON Lines) for the changes `order watch` follows')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format for data on stdout: text for people, json for scripts, jsonl (JSON Lines) for the changes `order watch` follows')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour; NO_COLOR turns it off under auto')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log line format on stderr [default: json with -o json or jsonl, else text]')
            [CompletionResult]::new('--tls', '--tls', [CompletionResultType]::ParameterName, 'Connect to Temporal over TLS')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log detail on stderr (-v, -vv, -vvv); RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log detail on stderr (-v, -vv, -vvv); RUST_LOG overrides')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr: no progress, notes or warnings')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr: no progress, notes or warnings')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('worker', 'worker', [CompletionResultType]::ParameterValue, 'Run the order workflow and its activities until SIGINT/SIGTERM, then drain')
            [CompletionResult]::new('order', 'order', [CompletionResultType]::ParameterValue, 'Submit, inspect, follow and cancel orders')
            [CompletionResult]::new('db', 'db', [CompletionResultType]::ParameterValue, 'Apply, inspect and reset the PostgreSQL schema')
            [CompletionResult]::new('product', 'product', [CompletionResultType]::ParameterValue, 'Manage the catalog and the stock orders draw on')
            [CompletionResult]::new('dev', 'dev', [CompletionResultType]::ParameterValue, 'Start a local stack (Temporal dev server, PostgreSQL, worker) for development')
            [CompletionResult]::new('demo', 'demo', [CompletionResultType]::ParameterValue, 'Run the sample orders on a local stack and show how each one ends')
            [CompletionResult]::new('bench', 'bench', [CompletionResultType]::ParameterValue, 'Measure throughput, latency and memory against an orchestration-only baseline')
            [CompletionResult]::new('codec-server', 'codec-server', [CompletionResultType]::ParameterValue, 'Serve the Temporal remote codec protocol, so the Web UI and `temporal --codec-endpoint` show encrypted orders decrypted')
            [CompletionResult]::new('serve', 'serve', [CompletionResultType]::ParameterValue, 'Serve the order API and the order page over HTTP')
            [CompletionResult]::new('doctor', 'doctor', [CompletionResultType]::ParameterValue, 'Check the setup end to end and say how to fix what fails')
            [CompletionResult]::new('audit', 'audit', [CompletionResultType]::ParameterValue, 'Check money, stock and notices against how each order ended')
            [CompletionResult]::new('replay', 'replay', [CompletionResultType]::ParameterValue, 'Replay order histories against this binary''s workflow code')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print shell completions')
            [CompletionResult]::new('man', 'man', [CompletionResultType]::ParameterValue, 'Print or write man pages')
            [CompletionResult]::new('options', 'options', [CompletionResultType]::ParameterValue, 'The options every command takes: Temporal, TLS, database, output (also `orderflow help options`)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'orderflow;worker' {
            [CompletionResult]::new('--retry-max-attempts', '--retry-max-attempts', [CompletionResultType]::ParameterName, 'Attempts per step before a transient failure fails the order')
            [CompletionResult]::new('--retry-initial-interval', '--retry-initial-interval', [CompletionResultType]::ParameterName, 'Wait before the first retry')
            [CompletionResult]::new('--retry-backoff', '--retry-backoff', [CompletionResultType]::ParameterName, 'Factor by which each wait grows')
            [CompletionResult]::new('--retry-max-interval', '--retry-max-interval', [CompletionResultType]::ParameterName, 'Longest wait between retries')
            [CompletionResult]::new('--outage-timeout', '--outage-timeout', [CompletionResultType]::ParameterName, 'How long a step waits for PostgreSQL to come back before the order fails INTERNAL. Such waits are not attempts: an outage never uses up the retry budget or fails a payment')
            [CompletionResult]::new('--max-concurrent-workflow-tasks', '--max-concurrent-workflow-tasks', [CompletionResultType]::ParameterName, 'Workflow tasks processed at once')
            [CompletionResult]::new('--max-concurrent-workflow-task-polls', '--max-concurrent-workflow-task-polls', [CompletionResultType]::ParameterName, 'Workflow-task polls kept open at once, sticky and not (the Temporal SDKs'' max concurrent workflow task polls)')
            [CompletionResult]::new('--nonsticky-to-sticky-poll-ratio', '--nonsticky-to-sticky-poll-ratio', [CompletionResultType]::ParameterName, 'The share of those polls on the task queue itself rather than on this worker''s sticky queue: new orders'' first tasks come from the former')
            [CompletionResult]::new('--max-cached-workflows', '--max-cached-workflows', [CompletionResultType]::ParameterName, 'Workflows kept in memory between their tasks (the sticky cache)')
            [CompletionResult]::new('--max-concurrent-activities', '--max-concurrent-activities', [CompletionResultType]::ParameterName, 'Activities (local and remote) running at once')
            [CompletionResult]::new('--db-max-connections', '--db-max-connections', [CompletionResultType]::ParameterName, 'Largest PostgreSQL connection pool the worker opens')
            [CompletionResult]::new('--notify-webhook', '--notify-webhook', [CompletionResultType]::ParameterName, 'POST each customer notification as JSON here (with an Idempotency-Key header); without it, notifications are recorded and logged. Only its scheme, host and port are ever printed (a path may hold a token)')
            [CompletionResult]::new('--notify-webhook-secret', '--notify-webhook-secret', [CompletionResultType]::ParameterName, 'Sign each webhook delivery with this secret: an Orderflow-Signature header, t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")> (see DOCS.md for how a receiver checks it). Never logged')
            [CompletionResult]::new('--metrics-address', '--metrics-address', [CompletionResultType]::ParameterName, 'Serve /metrics (Prometheus), /healthz and /readyz on this address (off by default)')
            [CompletionResult]::new('--notify-timeout', '--notify-timeout', [CompletionResultType]::ParameterName, 'Time limit of one webhook delivery. A delivery that gets no answer in time counts as an attempt that may have arrived: it is tried again (the receiver drops a repeat by its Idempotency-Key), and an order whose confirmation may have arrived is never cancelled')
            [CompletionResult]::new('--shutdown-timeout', '--shutdown-timeout', [CompletionResultType]::ParameterName, 'How long to let in-flight tasks finish after SIGINT/SIGTERM')
            [CompletionResult]::new('--address', '--address', [CompletionResultType]::ParameterName, 'Temporal frontend address; TEMPORAL_HOST_PORT is read too [default: the profile''s, else localhost:7233]')
            [CompletionResult]::new('--namespace', '--namespace', [CompletionResultType]::ParameterName, 'Temporal namespace [default: the profile''s, else default]')
            [CompletionResult]::new('--task-queue', '--task-queue', [CompletionResultType]::ParameterName, 'Task queue the worker polls and orders are sent to [default: orderflow]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Profile to read from the Temporal CLI''s config file')
            [CompletionResult]::new('--config-file', '--config-file', [CompletionResultType]::ParameterName, 'The Temporal CLI''s config file [default: its own, temporal.toml]')
            [CompletionResult]::new('--ui-url', '--ui-url', [CompletionResultType]::ParameterName, 'Web UI base for order links [default: the address''s host, port 8233]')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'How long to wait for Temporal or PostgreSQL to answer before giving up (exit 8)')
            [CompletionResult]::new('--encryption-key-file', '--encryption-key-file', [CompletionResultType]::ParameterName, 'Encrypt every payload sent to Temporal with the keys in this file: one KEY_ID:BASE64_OF_32_BYTES per line, the first encrypts, all decrypt; it must be readable by its owner only')
            [CompletionResult]::new('--api-key', '--api-key', [CompletionResultType]::ParameterName, 'API key for Temporal Cloud; turns TLS on. Never printed')
            [CompletionResult]::new('--tls-cert-path', '--tls-cert-path', [CompletionResultType]::ParameterName, 'Client certificate for mTLS')
            [CompletionResult]::new('--tls-key-path', '--tls-key-path', [CompletionResultType]::ParameterName, 'Client private key for mTLS')
            [CompletionResult]::new('--tls-ca-path', '--tls-ca-path', [CompletionResultType]::ParameterName, 'CA certificate to verify the server with')
            [CompletionResult]::new('--tls-server-name', '--tls-server-name', [CompletionResultType]::ParameterName, 'Server name to verify the certificate against')
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'PostgreSQL URL, postgres://USER:PASSWORD@HOST:PORT/DB; when unset, built from POSTGRES_HOST, POSTGRES_PORT, POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DB. Its password is never printed')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format for data on stdout: text for people, json for scripts, jsonl (JSON Lines) for the changes `order watch` follows')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format for data on stdout: text for people, json for scripts, jsonl (JSON Lines) for the changes `order watch` follows')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour; NO_COLOR turns it off under auto')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log line format on stderr [default: json with -o json or jsonl, else text]')
            [CompletionResult]::new('--accept-unencrypted', '--accept-unencrypted', [CompletionResultType]::ParameterName, 'With --encryption-key-file: still run orders that arrive unencrypted (from clients without the key file), for a switch-over window. Without it they fail INVALID_ORDER before any step')
            [CompletionResult]::new('--with-baseline', '--with-baseline', [CompletionResultType]::ParameterName, 'Also host the no-op baseline workflow (for `orderflow bench`)')
            [CompletionResult]::new('--tls', '--tls', [CompletionResultType]::ParameterName, 'Connect to Temporal over TLS')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log detail on stderr (-v, -vv, -vvv); RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log detail on stderr (-v, -vv, -vvv); RUST_LOG overrides')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr: no progress, notes or warnings')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr: no progress, notes or warnings')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'orderflow;order' {
            [CompletionResult]::new('--address', '--address', [CompletionResultType]::ParameterName, 'Temporal frontend address; TEMPORAL_HOST_PORT is read too [default: the profile''s, else localhost:7233]')
            [CompletionResult]::new('--namespace', '--namespace', [CompletionResultType]::ParameterName, 'Temporal namespace [default: the profile''s, else default]')
            [CompletionResult]::new('--task-queue', '--task-queue', [CompletionResultType]::ParameterName, 'Task queue the worker polls and orders are sent to [default: orderflow]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Profile to read from the Temporal CLI''s config file')
            [CompletionResult]::new('--config-file', '--config-file', [CompletionResultType]::ParameterName, 'The Temporal CLI''s config file [default: its own, temporal.toml]')
            [CompletionResult]::new('--ui-url', '--ui-url', [CompletionResultType]::ParameterName, 'Web UI base for order links [default: the address''s host, port 8233]')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'How long to wait for Temporal or PostgreSQL to answer before giving up (exit 8)')
            [CompletionResult]::new('--encryption-key-file', '--encryption-key-file', [CompletionResultType]::ParameterName, 'Encrypt every payload sent to Temporal with the keys in this file: one KEY_ID:BASE64_OF_32_BYTES per line, the first encrypts, all decrypt; it must be readable by its owner only')
            [CompletionResult]::new('--api-key', '--api-key', [CompletionResultType]::ParameterName, 'API key for Temporal Cloud; turns TLS on. Never printed')
            [CompletionResult]::new('--tls-cert-path', '--tls-cert-path', [CompletionResultType]::ParameterName, 'Client certificate for mTLS')
            [CompletionResult]::new('--tls-key-path', '--tls-key-path', [CompletionResultType]::ParameterName, 'Client private key for mTLS')
            [CompletionResult]::new('--tls-ca-path', '--tls-ca-path', [CompletionResultType]::ParameterName, 'CA certificate to verify the server with')
            [CompletionResult]::new('--tls-server-name', '--tls-server-name', [CompletionResultType]::ParameterName, 'Server name to verify the certificate against')
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'PostgreSQL URL, postgres://USER:PASSWORD@HOST:PORT/DB; when unset, built from POSTGRES_HOST, POSTGRES_PORT, POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DB. Its password is never printed')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format for data on stdout: text for people, json for scripts, jsonl (JSON Lines) for the changes `order watch` follows')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format for data on stdout: text for people, json for scripts, jsonl (JSON Lines) for the changes `order watch` follows')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour; NO_COLOR turns it off under auto')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log line format on stderr [default: json with -o json or jsonl, else text]')
            [CompletionResult]::new('--tls', '--tls', [CompletionResultType]::ParameterName, 'Connect to Temporal over TLS')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log detail on stderr (-v, -vv, -vvv); RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log detail on stderr (-v, -vv, -vvv); RUST_LOG overrides')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr: no progress, notes or warnings')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr: no progress, notes or warnings')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('create', 'create', [CompletionResultType]::ParameterValue, 'Validate order files, then start one workflow per order')
            [CompletionResult]::new('status', 'status', [CompletionResultType]::ParameterValue, 'Show an order: status, step, attempts, failure, items and amounts')
            [CompletionResult]::new('watch', 'watch', [CompletionResultType]::ParameterValue, 'Follow orders until each reaches COMPLETED, CANCELLED or FAILED')
            [CompletionResult]::new('cancel', 'cancel', [CompletionResultType]::ParameterValue, 'Cancel an order and wait for the outcome, or many (a selection)')
            [CompletionResult]::new('resubmit', 'resubmit', [CompletionResultType]::ParameterValue, 'Start FAILED orders again as new orders (e.g. after a gateway outage)')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List orders, newest first')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'orderflow;order;create' {
            [CompletionResult]::new('-f', '-f', [CompletionResultType]::ParameterName, 'Order file (JSON); repeat for several; ''-'' for stdin')
            [CompletionResult]::new('--file', '--file', [CompletionResultType]::ParameterName, 'Order file (JSON); repeat for several; ''-'' for stdin')
            [CompletionResult]::new('--id', '--id', [CompletionResultType]::ParameterName, 'Order ID to use (one order only); overrides the file''s "id"')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'With --watch: give up after this long (exit 7), e.g. 30s, 5m')
            [CompletionResult]::new('--max-in-flight', '--max-in-flight', [CompletionResultType]::ParameterName, 'Keep at most N of the orders this command starts running at once: the next one starts when one has ended. For a large file, pick N as the orders/s you want times the latency you accept (DOCS.md § Capacity)')
            [CompletionResult]::new('--rate', '--rate', [CompletionResultType]::ParameterName, 'Start at most this many orders a second (e.g. 50 or 50/s)')
            [CompletionResult]::new('--address', '--address', [CompletionResultType]::ParameterName, 'Temporal frontend address; TEMPORAL_HOST_PORT is read too [default: the profile''s, else localhost:7233]')
            [CompletionResult]::new('--namespace', '--namespace', [CompletionResultType]::ParameterName, 'Temporal namespace [default: the profile''s, else default]')
            [CompletionResult]::new('--task-queue', '--task-queue', [CompletionResultType]::ParameterName, 'Task queue the worker polls and orders are sent to [default: orderflow]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Profile to read from the Temporal CLI''s config file')
            [CompletionResult]::new('--config-file', '--config-file', [CompletionResultType]::ParameterName, 'The Temporal CLI''s config file [default: its own, temporal.toml]')
            [CompletionResult]::new('--ui-url', '--ui-url', [CompletionResultType]::ParameterName, 'Web UI base for order links [default: the address''s host, port 8233]')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'How long to wait for Temporal or PostgreSQL to answer before giving up (exit 8)')
            [CompletionResult]::new('--encryption-key-file', '--encryption-key-file', [CompletionResultType]::ParameterName, 'Encrypt every payload sent to Temporal with the keys in this file: one KEY_ID:BASE64_OF_32_BYTES per line, the first encrypts, all decrypt; it must be readable by its owner only')
            [CompletionResult]::new('--api-key', '--api-key', [CompletionResultType]::ParameterName, 'API key for Temporal Cloud; turns TLS on. Never printed')
            [CompletionResult]::new('--tls-cert-path', '--tls-cert-path', [CompletionResultType]::ParameterName, 'Client certificate for mTLS')
            [CompletionResult]::new('--tls-key-path', '--tls-key-path', [CompletionResultType]::ParameterName, 'Client private key for mTLS')
            [CompletionResult]::new('--tls-ca-path', '--tls-ca-path', [CompletionResultType]::ParameterName, 'CA certificate to verify the server with')
            [CompletionResult]::new('--tls-server-name', '--tls-server-name', [CompletionResultType]::ParameterName, 'Server name to verify the certificate against')
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'PostgreSQL URL, postgres://USER:PASSWORD@HOST:PORT/DB; when unset, built from POSTGRES_HOST, POSTGRES_PORT, POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DB. Its password is never printed')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format for data on stdout: text for people, json for scripts, jsonl (JSON Lines) for the changes `order watch` follows')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format for data on stdout: text for people, json for scripts, jsonl (JSON Lines) for the changes `order watch` follows')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour; NO_COLOR turns it off under auto')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log line format on stderr [default: json with -o json or jsonl, else text]')
            [CompletionResult]::new('-w', '-w', [CompletionResultType]::ParameterName, 'Follow the orders after submitting; exit codes as for `order watch`')
            [CompletionResult]::new('--watch', '--watch', [CompletionResultType]::ParameterName, 'Follow the orders after submitting; exit codes as for `order watch`')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Only validate and print what would be submitted')
            [CompletionResult]::new('--tls', '--tls', [CompletionResultType]::ParameterName, 'Connect to Temporal over TLS')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log detail on stderr (-v, -vv, -vvv); RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log detail on stderr (-v, -vv, -vvv); RUST_LOG overrides')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr: no progress, notes or warnings')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr: no progress, notes or warnings')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'orderflow;order;status' {
            [CompletionResult]::new('--address', '--address', [CompletionResultType]::ParameterName, 'Temporal frontend address; TEMPORAL_HOST_PORT is read too [default: the profile''s, else localhost:7233]')
            [CompletionResult]::new('--namespace', '--namespace', [CompletionResultType]::ParameterName, 'Temporal namespace [default: the profile''s, else default]')
            [CompletionResult]::new('--task-queue', '--task-queue', [CompletionResultType]::ParameterName, 'Task queue the worker polls and orders are sent to [default: orderflow]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Profile to read from the Temporal CLI''s config file')
            [CompletionResult]::new('--config-file', '--config-file', [CompletionResultType]::ParameterName, 'The Temporal CLI''s config file [default: its own, temporal.toml]')
            [CompletionResult]::new('--ui-url', '--ui-url', [CompletionResultType]::ParameterName, 'Web UI base for order links [default: the address''s host, port 8233]')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'How long to wait for Temporal or PostgreSQL to answer before giving up (exit 8)')
            [CompletionResult]::new('--encryption-key-file', '--encryption-key-file', [CompletionResultType]::ParameterName, 'Encrypt every payload sent to Temporal with the keys in this file: one KEY_ID:BASE64_OF_32_BYTES per line, the first encrypts, all decrypt; it must be readable by its owner only')
            [CompletionResult]::new('--api-key', '--api-key', [CompletionResultType]::ParameterName, 'API key for Temporal Cloud; turns TLS on. Never printed')
            [CompletionResult]::new('--tls-cert-path', '--tls-cert-path', [CompletionResultType]::ParameterName, 'Client certificate for mTLS')
            [CompletionResult]::new('--tls-key-path', '--tls-key-path', [CompletionResultType]::ParameterName, 'Client private key for mTLS')
            [CompletionResult]::new('--tls-ca-path', '--tls-ca-path', [CompletionResultType]::ParameterName, 'CA certificate to verify the server with')
            [CompletionResult]::new('--tls-server-name', '--tls-server-name', [CompletionResultType]::ParameterName, 'Server name to verify the certificate against')
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'PostgreSQL URL, postgres://USER:PASSWORD@HOST:PORT/DB; when unset, built from POSTGRES_HOST, POSTGRES_PORT, POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DB. Its password is never printed')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format for data on stdout: text for people, json for scripts, jsonl (JSON Lines) for the changes `order watch` follows')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format for data on stdout: text for people, json for scripts, jsonl (JSON Lines) for the changes `order watch` follows')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour; NO_COLOR turns it off under auto')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log line format on stderr [default: json with -o json or jsonl, else text]')
            [CompletionResult]::new('--timeline', '--timeline', [CompletionResultType]::ParameterName, 'The order''s life as one table: each step''s start, duration, attempts and waits (for a worker, retry back-off, the database), the signals, the compensation, and what it did to money, stock and notices (from the database, when one is configured)')
            [CompletionResult]::new('--tls', '--tls', [CompletionResultType]::ParameterName, 'Connect to Temporal over TLS')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log detail on stderr (-v, -vv, -vvv); RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log detail on stderr (-v, -vv, -vvv); RUST_LOG overrides')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr: no progress, notes or warnings')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr: no progress, notes or warnings')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'orderflow;order;watch' {
            [CompletionResult]::new('-f', '-f', [CompletionResultType]::ParameterName, 'Follow the orders of this order file (as `order create` read it; repeat for several)')
            [CompletionResult]::new('--file', '--file', [CompletionResultType]::ParameterName, 'Follow the orders of this order file (as `order create` read it; repeat for several)')
            [CompletionResult]::new('--status', '--status', [CompletionResultType]::ParameterName, 'Only orders in this status (any case); repeat or separate with commas for several; ''open'' is every status that has not ended')
            [CompletionResult]::new('--customer', '--customer', [CompletionResultType]::ParameterName, 'Only this customer''s orders')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Give up after this long (exit 7), e.g. 30s, 5m')
            [CompletionResult]::new('--address', '--address', [CompletionResultType]::ParameterName, 'Temporal frontend address; TEMPORAL_HOST_PORT is read too [default: the profile''s, else localhost:7233]')
            [CompletionResult]::new('--namespace', '--namespace', [CompletionResultType]::ParameterName, 'Temporal namespace [default: the profile''s, else default]')
            [CompletionResult]::new('--task-queue', '--task-queue', [CompletionResultType]::ParameterName, 'Task queue the worker polls and orders are sent to [default: orderflow]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Profile to read from the Temporal CLI''s config file')
            [CompletionResult]::new('--config-file', '--config-file', [CompletionResultType]::ParameterName, 'The Temporal CLI''s config file [default: its own, temporal.toml]')
            [CompletionResult]::new('--ui-url', '--ui-url', [CompletionResultType]::ParameterName, 'Web UI base for order links [default: the address''s host, port 8233]')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'How long to wait for Temporal or PostgreSQL to answer before giving up (exit 8)')
            [CompletionResult]::new('--encryption-key-file', '--encryption-key-file', [CompletionResultType]::ParameterName, 'Encrypt every payload sent to Temporal with the keys in this file: one KEY_ID:BASE64_OF_32_BYTES per line, the first encrypts, all decrypt; it must be readable by its owner only')
            [CompletionResult]::new('--api-key', '--api-key', [CompletionResultType]::ParameterName, 'API key for Temporal Cloud; turns TLS on. Never printed')
            [CompletionResult]::new('--tls-cert-path', '--tls-cert-path', [CompletionResultType]::ParameterName, 'Client certificate for mTLS')
            [CompletionResult]::new('--tls-key-path', '--tls-key-path', [CompletionResultType]::ParameterName, 'Client private key for mTLS')
            [CompletionResult]::new('--tls-ca-path', '--tls-ca-path', [CompletionResultType]::ParameterName, 'CA certificate to verify the server with')
            [CompletionResult]::new('--tls-server-name', '--tls-server-name', [CompletionResultType]::ParameterName, 'Server name to verify the certificate against')
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'PostgreSQL URL, postgres://USER:PASSWORD@HOST:PORT/DB; when unset, built from POSTGRES_HOST, POSTGRES_PORT, POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DB. Its password is never printed')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format for data on stdout: text for people, json for scripts, jsonl (JSON Lines) for the changes `order watch` follows')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format for data on stdout: text for people, json for scripts, jsonl (JSON Lines) for the changes `order watch` follows')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour; NO_COLOR turns it off under auto')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log line format on stderr [default: json with -o json or jsonl, else text]')
            [CompletionResult]::new('--tls', '--tls', [CompletionResultType]::ParameterName, 'Connect to Temporal over TLS')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log detail on stderr (-v, -vv, -vvv); RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log detail on stderr (-v, -vv, -vvv); RUST_LOG overrides')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr: no progress, notes or warnings')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr: no progress, notes or warnings')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'orderflow;order;cancel' {
            [CompletionResult]::new('--status', '--status', [CompletionResultType]::ParameterName, 'Only orders in this status (any case); repeat or separate with commas for several; ''open'' is every status that has not ended')
            [CompletionResult]::new('--customer', '--customer', [CompletionResultType]::ParameterName, 'Only this customer''s orders')
            [CompletionResult]::new('--failure-code', '--failure-code', [CompletionResultType]::ParameterName, 'Only orders that FAILED with this code (repeatable)')
            [CompletionResult]::new('--created-after', '--created-after', [CompletionResultType]::ParameterName, 'Only orders created after this time: RFC 3339 (2026-12-04T10:00:00Z) or a duration ago (2h)')
            [CompletionResult]::new('--created-before', '--created-before', [CompletionResultType]::ParameterName, 'Only orders created before this time: RFC 3339 or a duration ago')
            [CompletionResult]::new('--query', '--query', [CompletionResultType]::ParameterName, 'The orders a visibility query finds instead (on OrderStatus, CustomerId, FailureCode, OrderTotal), e.g. ''OrderStatus="PAID"''')
            [CompletionResult]::new('--ids-file', '--ids-file', [CompletionResultType]::ParameterName, 'The orders named in this file, one ID a line (''#'' comments); ''-'' reads stdin')
            [CompletionResult]::new('--rate', '--rate', [CompletionResultType]::ParameterName, 'With a selection: at most this many orders a second (e.g. 20 or 20/s)')
            [CompletionResult]::new('--reason', '--reason', [CompletionResultType]::ParameterName, 'Why the order is cancelled: one line, at most 500 characters, recorded with the order and told to the customer')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Give up waiting after this long (exit 7)')
            [CompletionResult]::new('--address', '--address', [CompletionResultType]::ParameterName, 'Temporal frontend address; TEMPORAL_HOST_PORT is read too [default: the profile''s, else localhost:7233]')
            [CompletionResult]::new('--namespace', '--namespace', [CompletionResultType]::ParameterName, 'Temporal namespace [default: the profile''s, else default]')
            [CompletionResult]::new('--task-queue', '--task-queue', [CompletionResultType]::ParameterName, 'Task queue the worker polls and orders are sent to [default: orderflow]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Profile to read from the Temporal CLI''s config file')
            [CompletionResult]::new('--config-file', '--config-file', [CompletionResultType]::ParameterName, 'The Temporal CLI''s config file [default: its own, temporal.toml]')
            [CompletionResult]::new('--ui-url', '--ui-url', [CompletionResultType]::ParameterName, 'Web UI base for order links [default: the address''s host, port 8233]')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'How long to wait for Temporal or PostgreSQL to answer before giving up (exit 8)')
            [CompletionResult]::new('--encryption-key-file', '--encryption-key-file', [CompletionResultType]::ParameterName, 'Encrypt every payload sent to Temporal with the keys in this file: one KEY_ID:BASE64_OF_32_BYTES per line, the first encrypts, all decrypt; it must be readable by its owner only')
            [CompletionResult]::new('--api-key', '--api-key', [CompletionResultType]::ParameterName, 'API key for Temporal Cloud; turns TLS on. Never printed')
            [CompletionResult]::new('--tls-cert-path', '--tls-cert-path', [CompletionResultType]::ParameterName, 'Client certificate for mTLS')
            [CompletionResult]::new('--tls-key-path', '--tls-key-path', [CompletionResultType]::ParameterName, 'Client private key for mTLS')
            [CompletionResult]::new('--tls-ca-path', '--tls-ca-path', [CompletionResultType]::ParameterName, 'CA certificate to verify the server with')
            [CompletionResult]::new('--tls-server-name', '--tls-server-name', [CompletionResultType]::ParameterName, 'Server name to verify the certificate against')
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'PostgreSQL URL, postgres://USER:PASSWORD@HOST:PORT/DB; when unset, built from POSTGRES_HOST, POSTGRES_PORT, POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DB. Its password is never printed')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format for data on stdout: text for people, json for scripts, jsonl (JSON Lines) for the changes `order watch` follows')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format for data on stdout: text for people, json for scripts, jsonl (JSON Lines) for the changes `order watch` follows')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour; NO_COLOR turns it off under auto')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log line format on stderr [default: json with -o json or jsonl, else text]')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'With a selection: list the orders it would cancel, and change nothing')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'With a selection: do not ask; required when stdin is not a terminal')
            [CompletionResult]::new('--no-wait', '--no-wait', [CompletionResultType]::ParameterName, 'Send the cancellation and return without waiting for the outcome')
            [CompletionResult]::new('--tls', '--tls', [CompletionResultType]::ParameterName, 'Connect to Temporal over TLS')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log detail on stderr (-v, -vv, -vvv); RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log detail on stderr (-v, -vv, -vvv); RUST_LOG overrides')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr: no progress, notes or warnings')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr: no progress, notes or warnings')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'orderflow;order;resubmit' {
            [CompletionResult]::new('--status', '--status', [CompletionResultType]::ParameterName, 'Only orders in this status (any case); repeat or separate with commas for several; ''open'' is every status that has not ended')
            [CompletionResult]::new('--customer', '--customer', [CompletionResultType]::ParameterName, 'Only this customer''s orders')
            [CompletionResult]::new('--failure-code', '--failure-code', [CompletionResultType]::ParameterName, 'Only orders that FAILED with this code (repeatable)')
            [CompletionResult]::new('--created-after', '--created-after', [CompletionResultType]::ParameterName, 'Only orders created after this time: RFC 3339 (2026-12-04T10:00:00Z) or a duration ago (2h)')
            [CompletionResult]::new('--created-before', '--created-before', [CompletionResultType]::ParameterName, 'Only orders created before this time: RFC 3339 or a duration ago')
            [CompletionResult]::new('--query', '--query', [CompletionResultType]::ParameterName, 'The orders a visibility query finds instead (on OrderStatus, CustomerId, FailureCode, OrderTotal), e.g. ''OrderStatus="PAID"''')
            [CompletionResult]::new('--ids-file', '--ids-file', [CompletionResultType]::ParameterName, 'The orders named in this file, one ID a line (''#'' comments); ''-'' reads stdin')
            [CompletionResult]::new('--rate', '--rate', [CompletionResultType]::ParameterName, 'With a selection: at most this many orders a second (e.g. 20 or 20/s)')
            [CompletionResult]::new('--address', '--address', [CompletionResultType]::ParameterName, 'Temporal frontend address; TEMPORAL_HOST_PORT is read too [default: the profile''s, else localhost:7233]')
            [CompletionResult]::new('--namespace', '--namespace', [CompletionResultType]::ParameterName, 'Temporal namespace [default: the profile''s, else default]')
            [CompletionResult]::new('--task-queue', '--task-queue', [CompletionResultType]::ParameterName, 'Task queue the worker polls and orders are sent to [default: orderflow]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Profile to read from the Temporal CLI''s config file')
            [CompletionResult]::new('--config-file', '--config-file', [CompletionResultType]::ParameterName, 'The Temporal CLI''s config file [default: its own, temporal.toml]')
            [CompletionResult]::new('--ui-url', '--ui-url', [CompletionResultType]::ParameterName, 'Web UI base for order links [default: the address''s host, port 8233]')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'How long to wait for Temporal or PostgreSQL to answer before giving up (exit 8)')
            [CompletionResult]::new('--encryption-key-file', '--encryption-key-file', [CompletionResultType]::ParameterName, 'Encrypt every payload sent to Temporal with the keys in this file: one KEY_ID:BASE64_OF_32_BYTES per line, the first encrypts, all decrypt; it must be readable by its owner only')
            [CompletionResult]::new('--api-key', '--api-key', [CompletionResultType]::ParameterName, 'API key for Temporal Cloud; turns TLS on. Never printed')
            [CompletionResult]::new('--tls-cert-path', '--tls-cert-path', [CompletionResultType]::ParameterName, 'Client certificate for mTLS')
            [CompletionResult]::new('--tls-key-path', '--tls-key-path', [CompletionResultType]::ParameterName, 'Client private key for mTLS')
            [CompletionResult]::new('--tls-ca-path', '--tls-ca-path', [CompletionResultType]::ParameterName, 'CA certificate to verify the server with')
            [CompletionResult]::new('--tls-server-name', '--tls-server-name', [CompletionResultType]::ParameterName, 'Server name to verify the certificate against')
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'PostgreSQL URL, postgres://USER:PASSWORD@HOST:PORT/DB; when unset, built from POSTGRES_HOST, POSTGRES_PORT, POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DB. Its password is never printed')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format for data on stdout: text for people, json for scripts, jsonl (JSON Lines) for the changes `order watch` follows')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format for data on stdout: text for people, json for scripts, jsonl (JSON Lines) for the changes `order watch` follows')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour; NO_COLOR turns it off under auto')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log line format on stderr [default: json with -o json or jsonl, else text]')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'With a selection: list the orders it would resubmit, and change nothing')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'With a selection: do not ask; required when stdin is not a terminal')
            [CompletionResult]::new('--tls', '--tls', [CompletionResultType]::ParameterName, 'Connect to Temporal over TLS')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log detail on stderr (-v, -vv, -vvv); RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log detail on stderr (-v, -vv, -vvv); RUST_LOG overrides')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr: no progress, notes or warnings')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr: no progress, notes or warnings')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'orderflow;order;list' {
            [CompletionResult]::new('--status', '--status', [CompletionResultType]::ParameterName, 'Only orders in this status (any case); repeat or separate with commas for several; ''open'' is every status that has not ended')
            [CompletionResult]::new('--customer', '--customer', [CompletionResultType]::ParameterName, 'Only this customer''s orders')
            [CompletionResult]::new('--limit', '--limit', [CompletionResultType]::ParameterName, 'At most this many orders')
            [CompletionResult]::new('--after', '--after', [CompletionResultType]::ParameterName, 'The next page: only the orders listed after this one (the last order ID of the previous page), with the same filters')
            [CompletionResult]::new('--query', '--query', [CompletionResultType]::ParameterName, 'List from Temporal''s visibility instead of the database, with a visibility query on the orders'' search attributes (OrderStatus, CustomerId, FailureCode, OrderTotal), e.g. ''OrderStatus="FAILED"''')
            [CompletionResult]::new('--address', '--address', [CompletionResultType]::ParameterName, 'Temporal frontend address; TEMPORAL_HOST_PORT is read too [default: the profile''s, else localhost:7233]')
            [CompletionResult]::new('--namespace', '--namespace', [CompletionResultType]::ParameterName, 'Temporal namespace [default: the profile''s, else default]')
            [CompletionResult]::new('--task-queue', '--task-queue', [CompletionResultType]::ParameterName, 'Task queue the worker polls and orders are sent to [default: orderflow]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Profile to read from the Temporal CLI''s config file')
            [CompletionResult]::new('--config-file', '--config-file', [CompletionResultType]::ParameterName, 'The Temporal CLI''s config file [default: its own, temporal.toml]')
            [CompletionResult]::new('--ui-url', '--ui-url', [CompletionResultType]::ParameterName, 'Web UI base for order links [default: the address''s host, port 8233]')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'How long to wait for Temporal or PostgreSQL to answer before giving up (exit 8)')
            [CompletionResult]::new('--encryption-key-file', '--encryption-key-file', [CompletionResultType]::ParameterName, 'Encrypt every payload sent to Temporal with the keys in this file: one KEY_ID:BASE64_OF_32_BYTES per line, the first encrypts, all decrypt; it must be readable by its owner only')
            [CompletionResult]::new('--api-key', '--api-key', [CompletionResultType]::ParameterName, 'API key for Temporal Cloud; turns TLS on. Never printed')
            [CompletionResult]::new('--tls-cert-path', '--tls-cert-path', [CompletionResultType]::ParameterName, 'Client certificate for mTLS')
            [CompletionResult]::new('--tls-key-path', '--tls-key-path', [CompletionResultType]::ParameterName, 'Client private key for mTLS')
            [CompletionResult]::new('--tls-ca-path', '--tls-ca-path', [CompletionResultType]::ParameterName, 'CA certificate to verify the server with')
            [CompletionResult]::new('--tls-server-name', '--tls-server-name', [CompletionResultType]::ParameterName, 'Server name to verify the certificate against')
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'PostgreSQL URL, postgres://USER:PASSWORD@HOST:PORT/DB; when unset, built from POSTGRES_HOST, POSTGRES_PORT, POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DB. Its password is never printed')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format for data on stdout: text for people, json for scripts, jsonl (JSON Lines) for the changes `order watch` follows')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format for data on stdout: text for people, json for scripts, jsonl (JSON Lines) for the changes `order watch` follows')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour; NO_COLOR turns it off under auto')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log line format on stderr [default: json with -o json or jsonl, else text]')
            [CompletionResult]::new('--tls', '--tls', [CompletionResultType]::ParameterName, 'Connect to Temporal over TLS')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log detail on stderr (-v, -vv, -vvv); RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log detail on stderr (-v, -vv, -vvv); RUST_LOG overrides')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr: no progress, notes or warnings')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr: no progress, notes or warnings')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'orderflow;order;help' {
            [CompletionResult]::new('create', 'create', [CompletionResultType]::ParameterValue, 'Validate order files, then start one workflow per order')
            [CompletionResult]::new('status', 'status', [CompletionResultType]::ParameterValue, 'Show an order: status, step, attempts, failure, items and amounts')
            [CompletionResult]::new('watch', 'watch', [CompletionResultType]::ParameterValue, 'Follow orders until each reaches COMPLETED, CANCELLED or FAILED')
            [CompletionResult]::new('cancel', 'cancel', [CompletionResultType]::ParameterValue, 'Cancel an order and wait for the outcome, or many (a selection)')
            [CompletionResult]::new('resubmit', 'resubmit', [CompletionResultType]::ParameterValue, 'Start FAILED orders again as new orders (e.g. after a gateway outage)')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List orders, newest first')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'orderflow;order;help;create' {
            break
        }
        'orderflow;order;help;status' {
            break
        }
        'orderflow;order;help;watch' {
            break
        }
        'orderflow;order;help;cancel' {
            break
        }
        'orderflow;order;help;resubmit' {
            break
        }
        'orderflow;order;help;list' {
            break
        }
        'orderflow;order;help;help' {
            break
        }
        'orderflow;db' {
            [CompletionResult]::new('--address', '--address', [CompletionResultType]::ParameterName, 'Temporal frontend address; TEMPORAL_HOST_PORT is read too [default: the profile''s, else localhost:7233]')
            [CompletionResult]::new('--namespace', '--namespace', [CompletionResultType]::ParameterName, 'Temporal namespace [default: the profile''s, else default]')
            [CompletionResult]::new('--task-queue', '--task-queue', [CompletionResultType]::ParameterName, 'Task queue the worker polls and orders are sent to [default: orderflow]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Profile to read from the Temporal CLI''s config file')
            [CompletionResult]::new('--config-file', '--config-file', [CompletionResultType]::ParameterName, 'The Temporal CLI''s config file [default: its own, temporal.toml]')
            [CompletionResult]::new('--ui-url', '--ui-url', [CompletionResultType]::ParameterName, 'Web UI base for order links [default: the address''s host, port 8233]')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'How long to wait for Temporal or PostgreSQL to answer before giving up (exit 8)')
            [CompletionResult]::new('--encryption-key-file', '--encryption-key-file', [CompletionResultType]::ParameterName, 'Encrypt every payload sent to Temporal with the keys in this file: one KEY_ID:BASE64_OF_32_BYTES per line, the first encrypts, all decrypt; it must be readable by its owner only')
            [CompletionResult]::new('--api-key', '--api-key', [CompletionResultType]::ParameterName, 'API key for Temporal Cloud; turns TLS on. Never printed')
            [CompletionResult]::new('--tls-cert-path', '--tls-cert-path', [CompletionResultType]::ParameterName, 'Client certificate for mTLS')
            [CompletionResult]::new('--tls-key-path', '--tls-key-path', [CompletionResultType]::ParameterName, 'Client private key for mTLS')
            [CompletionResult]::new('--tls-ca-path', '--tls-ca-path', [CompletionResultType]::ParameterName, 'CA certificate to verify the server with')
            [CompletionResult]::new('--tls-server-name', '--tls-server-name', [CompletionResultType]::ParameterName, 'Server name to verify the certificate against')
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'PostgreSQL URL, postgres://USER:PASSWORD@HOST:PORT/DB; when unset, built from POSTGRES_HOST, POSTGRES_PORT, POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DB. Its password is never printed')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format for data on stdout: text for people, json for scripts, jsonl (JSON Lines) for the changes `order watch` follows')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format for data on stdout: text for people, json for scripts, jsonl (JSON Lines) for the changes `order watch` follows')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour; NO_COLOR turns it off under auto')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log line format on stderr [default: json with -o json or jsonl, else text]')
            [CompletionResult]::new('--tls', '--tls', [CompletionResultType]::ParameterName, 'Connect to Temporal over TLS')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log detail on stderr (-v, -vv, -vvv); RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log detail on stderr (-v, -vv, -vvv); RUST_LOG overrides')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr: no progress, notes or warnings')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr: no progress, notes or warnings')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('migrate', 'migrate', [CompletionResultType]::ParameterValue, 'Apply pending migrations (safe to repeat)')
            [CompletionResult]::new('status', 'status', [CompletionResultType]::ParameterValue, 'List applied and pending migrations')
            [CompletionResult]::new('reset', 'reset', [CompletionResultType]::ParameterValue, 'Drop everything orderflow stored and re-apply the migrations')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'orderflow;db;migrate' {
            [CompletionResult]::new('--address', '--address', [CompletionResultType]::ParameterName, 'Temporal frontend address; TEMPORAL_HOST_PORT is read too [default: the profile''s, else localhost:7233]')
            [CompletionResult]::new('--namespace', '--namespace', [CompletionResultType]::ParameterName, 'Temporal namespace [default: the profile''s, else default]')
            [CompletionResult]::new('--task-queue', '--task-queue', [CompletionResultType]::ParameterName, 'Task queue the worker polls and orders are sent to [default: orderflow]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Profile to read from the Temporal CLI''s config file')
            [CompletionResult]::new('--config-file', '--config-file', [CompletionResultType]::ParameterName, 'The Temporal CLI''s config file [default: its own, temporal.toml]')
            [CompletionResult]::new('--ui-url', '--ui-url', [CompletionResultType]::ParameterName, 'Web UI base for order links [default: the address''s host, port 8233]')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'How long to wait for Temporal or PostgreSQL to answer before giving up (exit 8)')
            [CompletionResult]::new('--encryption-key-file', '--encryption-key-file', [CompletionResultType]::ParameterName, 'Encrypt every payload sent to Temporal with the keys in this file: one KEY_ID:BASE64_OF_32_BYTES per line, the first encrypts, all decrypt; it must be readable by its owner only')
            [CompletionResult]::new('--api-key', '--api-key', [CompletionResultType]::ParameterName, 'API key for Temporal Cloud; turns TLS on. Never printed')
            [CompletionResult]::new('--tls-cert-path', '--tls-cert-path', [CompletionResultType]::ParameterName, 'Client certificate for mTLS')
            [CompletionResult]::new('--tls-key-path', '--tls-key-path', [CompletionResultType]::ParameterName, 'Client private key for mTLS')
            [CompletionResult]::new('--tls-ca-path', '--tls-ca-path', [CompletionResultType]::ParameterName, 'CA certificate to verify the server with')
            [CompletionResult]::new('--tls-server-name', '--tls-server-name', [CompletionResultType]::ParameterName, 'Server name to verify the certificate against')
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'PostgreSQL URL, postgres://USER:PASSWORD@HOST:PORT/DB; when unset, built from POSTGRES_HOST, POSTGRES_PORT, POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DB. Its password is never printed')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format for data on stdout: text for people, json for scripts, jsonl (JSON Lines) for the changes `order watch` follows')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format for data on stdout: text for people, json for scripts, jsonl (JSON Lines) for the changes `order watch` follows')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour; NO_COLOR turns it off under auto')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log line format on stderr [default: json with -o json or jsonl, else text]')
            [CompletionResult]::new('--tls', '--tls', [CompletionResultType]::ParameterName, 'Connect to Temporal over TLS')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log detail on stderr (-v, -vv, -vvv); RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log detail on stderr (-v, -vv, -vvv); RUST_LOG overrides')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr: no progress, notes or warnings')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr: no progress, notes or warnings')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'orderflow;db;status' {
            [CompletionResult]::new('--address', '--address', [CompletionResultType]::ParameterName, 'Temporal frontend address; TEMPORAL_HOST_PORT is read too [default: the profile''s, else localhost:7233]')
            [CompletionResult]::new('--namespace', '--namespace', [CompletionResultType]::ParameterName, 'Temporal namespace [default: the profile''s, else default]')
            [CompletionResult]::new('--task-queue', '--task-queue', [CompletionResultType]::ParameterName, 'Task queue the worker polls and orders are sent to [default: orderflow]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Profile to read from the Temporal CLI''s config file')
            [CompletionResult]::new('--config-file', '--config-file', [CompletionResultType]::ParameterName, 'The Temporal CLI''s config file [default: its own, temporal.toml]')
            [CompletionResult]::new('--ui-url', '--ui-url', [CompletionResultType]::ParameterName, 'Web UI base for order links [default: the address''s host, port 8233]')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'How long to wait for Temporal or PostgreSQL to answer before giving up (exit 8)')
            [CompletionResult]::new('--encryption-key-file', '--encryption-key-file', [CompletionResultType]::ParameterName, 'Encrypt every payload sent to Temporal with the keys in this file: one KEY_ID:BASE64_OF_32_BYTES per line, the first encrypts, all decrypt; it must be readable by its owner only')
            [CompletionResult]::new('--api-key', '--api-key', [CompletionResultType]::ParameterName, 'API key for Temporal Cloud; turns TLS on. Never printed')
            [CompletionResult]::new('--tls-cert-path', '--tls-cert-path', [CompletionResultType]::ParameterName, 'Client certificate for mTLS')
            [CompletionResult]::new('--tls-key-path', '--tls-key-path', [CompletionResultType]::ParameterName, 'Client private key for mTLS')
            [CompletionResult]::new('--tls-ca-path', '--tls-ca-path', [CompletionResultType]::ParameterName, 'CA certificate to verify the server with')
            [CompletionResult]::new('--tls-server-name', '--tls-server-name', [CompletionResultType]::ParameterName, 'Server name to verify the certificate against')
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'PostgreSQL URL, postgres://USER:PASSWORD@HOST:PORT/DB; when unset, built from POSTGRES_HOST, POSTGRES_PORT, POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DB. Its password is never printed')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format for data on stdout: text for people, json for scripts, jsonl (JSON Lines) for the changes `order watch` follows')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format for data on stdout: text for people, json for scripts, jsonl (JSON Lines) for the changes `order watch` follows')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour; NO_COLOR turns it off under auto')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log line format on stderr [default: json with -o json or jsonl, else text]')
            [CompletionResult]::new('--tls', '--tls', [CompletionResultType]::ParameterName, 'Connect to Temporal over TLS')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log detail on stderr (-v, -vv, -vvv); RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log detail on stderr (-v, -vv, -vvv); RUST_LOG overrides')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr: no progress, notes or warnings')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr: no progress, notes or warnings')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'orderflow;db;reset' {
            [CompletionResult]::new('--address', '--address', [CompletionResultType]::ParameterName, 'Temporal frontend address; TEMPORAL_HOST_PORT is read too [default: the profile''s, else localhost:7233]')
            [CompletionResult]::new('--namespace', '--namespace', [CompletionResultType]::ParameterName, 'Temporal namespace [default: the profile''s, else default]')
            [CompletionResult]::new('--task-queue', '--task-queue', [CompletionResultType]::ParameterName, 'Task queue the worker polls and orders are sent to [default: orderflow]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Profile to read from the Temporal CLI''s config file')
            [CompletionResult]::new('--config-file', '--config-file', [CompletionResultType]::ParameterName, 'The Temporal CLI''s config file [default: its own, temporal.toml]')
            [CompletionResult]::new('--ui-url', '--ui-url', [CompletionResultType]::ParameterName, 'Web UI base for order links [default: the address''s host, port 8233]')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'How long to wait for Temporal or PostgreSQL to answer before giving up (exit 8)')
            [CompletionResult]::new('--encryption-key-file', '--encryption-key-file', [CompletionResultType]::ParameterName, 'Encrypt every payload sent to Temporal with the keys in this file: one KEY_ID:BASE64_OF_32_BYTES per line, the first encrypts, all decrypt; it must be readable by its owner only')
            [CompletionResult]::new('--api-key', '--api-key', [CompletionResultType]::ParameterName, 'API key for Temporal Cloud; turns TLS on. Never printed')
            [CompletionResult]::new('--tls-cert-path', '--tls-cert-path', [CompletionResultType]::ParameterName, 'Client certificate for mTLS')
            [CompletionResult]::new('--tls-key-path', '--tls-key-path', [CompletionResultType]::ParameterName, 'Client private key for mTLS')
            [CompletionResult]::new('--tls-ca-path', '--tls-ca-path', [CompletionResultType]::ParameterName, 'CA certificate to verify the server with')
            [CompletionResult]::new('--tls-server-name', '--tls-server-name', [CompletionResultType]::ParameterName, 'Server name to verify the certificate against')
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'PostgreSQL URL, postgres://USER:PASSWORD@HOST:PORT/DB; when unset, built from POSTGRES_HOST, POSTGRES_PORT, POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DB. Its password is never printed')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format for data on stdout: text for people, json for scripts, jsonl (JSON Lines) for the changes `order watch` follows')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format for data on stdout: text for people, json for scripts, jsonl (JSON Lines) for the changes `order watch` follows')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour; NO_COLOR turns it off under auto')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log line format on stderr [default: json with -o json or jsonl, else text]')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Do not ask; required when stdin is not a terminal')
            [CompletionResult]::new('--tls', '--tls', [CompletionResultType]::ParameterName, 'Connect to Temporal over TLS')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log detail on stderr (-v, -vv, -vvv); RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log detail on stderr (-v, -vv, -vvv); RUST_LOG overrides')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr: no progress, notes or warnings')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr: no progress, notes or warnings')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'orderflow;db;help' {
            [CompletionResult]::new('migrate', 'migrate', [CompletionResultType]::ParameterValue, 'Apply pending migrations (safe to repeat)')
            [CompletionResult]::new('status', 'status', [CompletionResultType]::ParameterValue, 'List applied and pending migrations')
            [CompletionResult]::new('reset', 'reset', [CompletionResultType]::ParameterValue, 'Drop everything orderflow stored and re-apply the migrations')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'orderflow;db;help;migrate' {
            break
        }
        'orderflow;db;help;status' {
            break
        }
        'orderflow;db;help;reset' {
            break
        }
        'orderflow;db;help;help' {
            break
        }
        'orderflow;product' {
            [CompletionResult]::new('--address', '--address', [CompletionResultType]::ParameterName, 'Temporal frontend address; TEMPORAL_HOST_PORT is read too [default: the profile''s, else localhost:7233]')
            [CompletionResult]::new('--namespace', '--namespace', [CompletionResultType]::ParameterName, 'Temporal namespace [default: the profile''s, else default]')
            [CompletionResult]::new('--task-queue', '--task-queue', [CompletionResultType]::ParameterName, 'Task queue the worker polls and orders are sent to [default: orderflow]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Profile to read from the Temporal CLI''s config file')
            [CompletionResult]::new('--config-file', '--config-file', [CompletionResultType]::ParameterName, 'The Temporal CLI''s config file [default: its own, temporal.toml]')
            [CompletionResult]::new('--ui-url', '--ui-url', [CompletionResultType]::ParameterName, 'Web UI base for order links [default: the address''s host, port 8233]')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'How long to wait for Temporal or PostgreSQL to answer before giving up (exit 8)')
            [CompletionResult]::new('--encryption-key-file', '--encryption-key-file', [CompletionResultType]::ParameterName, 'Encrypt every payload sent to Temporal with the keys in this file: one KEY_ID:BASE64_OF_32_BYTES per line, the first encrypts, all decrypt; it must be readable by its owner only')
            [CompletionResult]::new('--api-key', '--api-key', [CompletionResultType]::ParameterName, 'API key for Temporal Cloud; turns TLS on. Never printed')
            [CompletionResult]::new('--tls-cert-path', '--tls-cert-path', [CompletionResultType]::ParameterName, 'Client certificate for mTLS')
            [CompletionResult]::new('--tls-key-path', '--tls-key-path', [CompletionResultType]::ParameterName, 'Client private key for mTLS')
            [CompletionResult]::new('--tls-ca-path', '--tls-ca-path', [CompletionResultType]::ParameterName, 'CA certificate to verify the server with')
            [CompletionResult]::new('--tls-server-name', '--tls-server-name', [CompletionResultType]::ParameterName, 'Server name to verify the certificate against')
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'PostgreSQL URL, postgres://USER:PASSWORD@HOST:PORT/DB; when unset, built from POSTGRES_HOST, POSTGRES_PORT, POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DB. Its password is never printed')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format for data on stdout: text for people, json for scripts, jsonl (JSON Lines) for the changes `order watch` follows')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format for data on stdout: text for people, json for scripts, jsonl (JSON Lines) for the changes `order watch` follows')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour; NO_COLOR turns it off under auto')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log line format on stderr [default: json with -o json or jsonl, else text]')
            [CompletionResult]::new('--tls', '--tls', [CompletionResultType]::ParameterName, 'Connect to Temporal over TLS')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log detail on stderr (-v, -vv, -vvv); RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log detail on stderr (-v, -vv, -vvv); RUST_LOG overrides')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr: no progress, notes or warnings')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr: no progress, notes or warnings')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('import', 'import', [CompletionResultType]::ParameterValue, 'Insert or update products from a JSON file')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'Show the catalog with prices and stock')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'orderflow;product;import' {
            [CompletionResult]::new('-f', '-f', [CompletionResultType]::ParameterName, 'Catalog file (JSON); ''-'' for stdin')
            [CompletionResult]::new('--file', '--file', [CompletionResultType]::ParameterName, 'Catalog file (JSON); ''-'' for stdin')
            [CompletionResult]::new('--address', '--address', [CompletionResultType]::ParameterName, 'Temporal frontend address; TEMPORAL_HOST_PORT is read too [default: the profile''s, else localhost:7233]')
            [CompletionResult]::new('--namespace', '--namespace', [CompletionResultType]::ParameterName, 'Temporal namespace [default: the profile''s, else default]')
            [CompletionResult]::new('--task-queue', '--task-queue', [CompletionResultType]::ParameterName, 'Task queue the worker polls and orders are sent to [default: orderflow]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Profile to read from the Temporal CLI''s config file')
            [CompletionResult]::new('--config-file', '--config-file', [CompletionResultType]::ParameterName, 'The Temporal CLI''s config file [default: its own, temporal.toml]')
            [CompletionResult]::new('--ui-url', '--ui-url', [CompletionResultType]::ParameterName, 'Web UI base for order links [default: the address''s host, port 8233]')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'How long to wait for Temporal or PostgreSQL to answer before giving up (exit 8)')
            [CompletionResult]::new('--encryption-key-file', '--encryption-key-file', [CompletionResultType]::ParameterName, 'Encrypt every payload sent to Temporal with the keys in this file: one KEY_ID:BASE64_OF_32_BYTES per line, the first encrypts, all decrypt; it must be readable by its owner only')
            [CompletionResult]::new('--api-key', '--api-key', [CompletionResultType]::ParameterName, 'API key for Temporal Cloud; turns TLS on. Never printed')
            [CompletionResult]::new('--tls-cert-path', '--tls-cert-path', [CompletionResultType]::ParameterName, 'Client certificate for mTLS')
            [CompletionResult]::new('--tls-key-path', '--tls-key-path', [CompletionResultType]::ParameterName, 'Client private key for mTLS')
            [CompletionResult]::new('--tls-ca-path', '--tls-ca-path', [CompletionResultType]::ParameterName, 'CA certificate to verify the server with')
            [CompletionResult]::new('--tls-server-name', '--tls-server-name', [CompletionResultType]::ParameterName, 'Server name to verify the certificate against')
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'PostgreSQL URL, postgres://USER:PASSWORD@HOST:PORT/DB; when unset, built from POSTGRES_HOST, POSTGRES_PORT, POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DB. Its password is never printed')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format for data on stdout: text for people, json for scripts, jsonl (JSON Lines) for the changes `order watch` follows')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format for data on stdout: text for people, json for scripts, jsonl (JSON Lines) for the changes `order watch` follows')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour; NO_COLOR turns it off under auto')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log line format on stderr [default: json with -o json or jsonl, else text]')
            [CompletionResult]::new('--tls', '--tls', [CompletionResultType]::ParameterName, 'Connect to Temporal over TLS')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log detail on stderr (-v, -vv, -vvv); RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log detail on stderr (-v, -vv, -vvv); RUST_LOG overrides')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr: no progress, notes or warnings')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr: no progress, notes or warnings')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'orderflow;product;list' {
            [CompletionResult]::new('--address', '--address', [CompletionResultType]::ParameterName, 'Temporal frontend address; TEMPORAL_HOST_PORT is read too [default: the profile''s, else localhost:7233]')
            [CompletionResult]::new('--namespace', '--namespace', [CompletionResultType]::ParameterName, 'Temporal namespace [default: the profile''s, else default]')
            [CompletionResult]::new('--task-queue', '--task-queue', [CompletionResultType]::ParameterName, 'Task queue the worker polls and orders are sent to [default: orderflow]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Profile to read from the Temporal CLI''s config file')
            [CompletionResult]::new('--config-file', '--config-file', [CompletionResultType]::ParameterName, 'The Temporal CLI''s config file [default: its own, temporal.toml]')
            [CompletionResult]::new('--ui-url', '--ui-url', [CompletionResultType]::ParameterName, 'Web UI base for order links [default: the address''s host, port 8233]')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'How long to wait for Temporal or PostgreSQL to answer before giving up (exit 8)')
            [CompletionResult]::new('--encryption-key-file', '--encryption-key-file', [CompletionResultType]::ParameterName, 'Encrypt every payload sent to Temporal with the keys in this file: one KEY_ID:BASE64_OF_32_BYTES per line, the first encrypts, all decrypt; it must be readable by its owner only')
            [CompletionResult]::new('--api-key', '--api-key', [CompletionResultType]::ParameterName, 'API key for Temporal Cloud; turns TLS on. Never printed')
            [CompletionResult]::new('--tls-cert-path', '--tls-cert-path', [CompletionResultType]::ParameterName, 'Client certificate for mTLS')
            [CompletionResult]::new('--tls-key-path', '--tls-key-path', [CompletionResultType]::ParameterName, 'Client private key for mTLS')
            [CompletionResult]::new('--tls-ca-path', '--tls-ca-path', [CompletionResultType]::ParameterName, 'CA certificate to verify the server with')
            [CompletionResult]::new('--tls-server-name', '--tls-server-name', [CompletionResultType]::ParameterName, 'Server name to verify the certificate against')
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'PostgreSQL URL, postgres://USER:PASSWORD@HOST:PORT/DB; when unset, built from POSTGRES_HOST, POSTGRES_PORT, POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DB. Its password is never printed')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format for data on stdout: text for people, json for scripts, jsonl (JSON Lines) for the changes `order watch` follows')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format for data on stdout: text for people, json for scripts, jsonl (JSON Lines) for the changes `order watch` follows')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour; NO_COLOR turns it off under auto')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log line format on stderr [default: json with -o json or jsonl, else text]')
            [CompletionResult]::new('--tls', '--tls', [CompletionResultType]::ParameterName, 'Connect to Temporal over TLS')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log detail on stderr (-v, -vv, -vvv); RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log detail on stderr (-v, -vv, -vvv); RUST_LOG overrides')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr: no progress, notes or warnings')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr: no progress, notes or warnings')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'orderflow;product;help' {
            [CompletionResult]::new('import', 'import', [CompletionResultType]::ParameterValue, 'Insert or update products from a JSON file')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'Show the catalog with prices and stock')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'orderflow;product;help;import' {
            break
        }
        'orderflow;product;help;list' {
            break
        }
        'orderflow;product;help;help' {
            break
        }
        'orderflow;dev' {
            [CompletionResult]::new('--data-dir', '--data-dir', [CompletionResultType]::ParameterName, 'Where the stack keeps its state, Temporal''s and PostgreSQL''s together [default: ~/.local/share/orderflow]')
            [CompletionResult]::new('--port', '--port', [CompletionResultType]::ParameterName, 'Start a Temporal dev server on this port (127.0.0.1), rather than use the one that answers at --address or localhost:7233')
            [CompletionResult]::new('--ui-port', '--ui-port', [CompletionResultType]::ParameterName, 'The Web UI''s port of the server it starts [default: 8233 when free]')
            [CompletionResult]::new('--listen', '--listen', [CompletionResultType]::ParameterName, 'Serve the order API and page (`orderflow serve`) here [default: 127.0.0.1:8080, or a free loopback port when it is taken]')
            [CompletionResult]::new('--address', '--address', [CompletionResultType]::ParameterName, 'Temporal frontend address; TEMPORAL_HOST_PORT is read too [default: the profile''s, else localhost:7233]')
            [CompletionResult]::new('--namespace', '--namespace', [CompletionResultType]::ParameterName, 'Temporal namespace [default: the profile''s, else default]')
            [CompletionResult]::new('--task-queue', '--task-queue', [CompletionResultType]::ParameterName, 'Task queue the worker polls and orders are sent to [default: orderflow]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Profile to read from the Temporal CLI''s config file')
            [CompletionResult]::new('--config-file', '--config-file', [CompletionResultType]::ParameterName, 'The Temporal CLI''s config file [default: its own, temporal.toml]')
            [CompletionResult]::new('--ui-url', '--ui-url', [CompletionResultType]::ParameterName, 'Web UI base for order links [default: the address''s host, port 8233]')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'How long to wait for Temporal or PostgreSQL to answer before giving up (exit 8)')
            [CompletionResult]::new('--encryption-key-file', '--encryption-key-file', [CompletionResultType]::ParameterName, 'Encrypt every payload sent to Temporal with the keys in this file: one KEY_ID:BASE64_OF_32_BYTES per line, the first encrypts, all decrypt; it must be readable by its owner only')
            [CompletionResult]::new('--api-key', '--api-key', [CompletionResultType]::ParameterName, 'API key for Temporal Cloud; turns TLS on. Never printed')
            [CompletionResult]::new('--tls-cert-path', '--tls-cert-path', [CompletionResultType]::ParameterName, 'Client certificate for mTLS')
            [CompletionResult]::new('--tls-key-path', '--tls-key-path', [CompletionResultType]::ParameterName, 'Client private key for mTLS')
            [CompletionResult]::new('--tls-ca-path', '--tls-ca-path', [CompletionResultType]::ParameterName, 'CA certificate to verify the server with')
            [CompletionResult]::new('--tls-server-name', '--tls-server-name', [CompletionResultType]::ParameterName, 'Server name to verify the certificate against')
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'PostgreSQL URL, postgres://USER:PASSWORD@HOST:PORT/DB; when unset, built from POSTGRES_HOST, POSTGRES_PORT, POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DB. Its password is never printed')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format for data on stdout: text for people, json for scripts, jsonl (JSON Lines) for the changes `order watch` follows')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format for data on stdout: text for people, json for scripts, jsonl (JSON Lines) for the changes `order watch` follows')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour; NO_COLOR turns it off under auto')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log line format on stderr [default: json with -o json or jsonl, else text]')
            [CompletionResult]::new('--fresh', '--fresh', [CompletionResultType]::ParameterName, 'Delete the kept state (orders in Temporal and in PostgreSQL) first')
            [CompletionResult]::new('--encrypt', '--encrypt', [CompletionResultType]::ParameterName, 'Encrypt every payload: with --encryption-key-file''s keys, else a key generated into the data directory (mode 0600); the Web UI decodes through a codec server this command runs on 127.0.0.1')
            [CompletionResult]::new('--tls', '--tls', [CompletionResultType]::ParameterName, 'Connect to Temporal over TLS')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log detail on stderr (-v, -vv, -vvv); RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log detail on stderr (-v, -vv, -vvv); RUST_LOG overrides')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr: no progress, notes or warnings')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr: no progress, notes or warnings')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('env', 'env', [CompletionResultType]::ParameterValue, 'Print the running stack''s `export` lines again (`-o json`: its settings)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'orderflow;dev;env' {
            [CompletionResult]::new('--data-dir', '--data-dir', [CompletionResultType]::ParameterName, 'The data directory of the stack [default: ~/.local/share/orderflow]')
            [CompletionResult]::new('--address', '--address', [CompletionResultType]::ParameterName, 'Temporal frontend address; TEMPORAL_HOST_PORT is read too [default: the profile''s, else localhost:7233]')
            [CompletionResult]::new('--namespace', '--namespace', [CompletionResultType]::ParameterName, 'Temporal namespace [default: the profile''s, else default]')
            [CompletionResult]::new('--task-queue', '--task-queue', [CompletionResultType]::ParameterName, 'Task queue the worker polls and orders are sent to [default: orderflow]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Profile to read from the Temporal CLI''s config file')
            [CompletionResult]::new('--config-file', '--config-file', [CompletionResultType]::ParameterName, 'The Temporal CLI''s config file [default: its own, temporal.toml]')
            [CompletionResult]::new('--ui-url', '--ui-url', [CompletionResultType]::ParameterName, 'Web UI base for order links [default: the address''s host, port 8233]')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'How long to wait for Temporal or PostgreSQL to answer before giving up (exit 8)')
            [CompletionResult]::new('--encryption-key-file', '--encryption-key-file', [CompletionResultType]::ParameterName, 'Encrypt every payload sent to Temporal with the keys in this file: one KEY_ID:BASE64_OF_32_BYTES per line, the first encrypts, all decrypt; it must be readable by its owner only')
            [CompletionResult]::new('--api-key', '--api-key', [CompletionResultType]::ParameterName, 'API key for Temporal Cloud; turns TLS on. Never printed')
            [CompletionResult]::new('--tls-cert-path', '--tls-cert-path', [CompletionResultType]::ParameterName, 'Client certificate for mTLS')
            [CompletionResult]::new('--tls-key-path', '--tls-key-path', [CompletionResultType]::ParameterName, 'Client private key for mTLS')
            [CompletionResult]::new('--tls-ca-path', '--tls-ca-path', [CompletionResultType]::ParameterName, 'CA certificate to verify the server with')
            [CompletionResult]::new('--tls-server-name', '--tls-server-name', [CompletionResultType]::ParameterName, 'Server name to verify the certificate against')
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'PostgreSQL URL, postgres://USER:PASSWORD@HOST:PORT/DB; when unset, built from POSTGRES_HOST, POSTGRES_PORT, POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DB. Its password is never printed')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format for data on stdout: text for people, json for scripts, jsonl (JSON Lines) for the changes `order watch` follows')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format for data on stdout: text for people, json for scripts, jsonl (JSON Lines) for the changes `order watch` follows')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour; NO_COLOR turns it off under auto')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log line format on stderr [default: json with -o json or jsonl, else text]')
            [CompletionResult]::new('--tls', '--tls', [CompletionResultType]::ParameterName, 'Connect to Temporal over TLS')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log detail on stderr (-v, -vv, -vvv); RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log detail on stderr (-v, -vv, -vvv); RUST_LOG overrides')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr: no progress, notes or warnings')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr: no progress, notes or warnings')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'orderflow;dev;help' {
            [CompletionResult]::new('env', 'env', [CompletionResultType]::ParameterValue, 'Print the running stack''s `export` lines again (`-o json`: its settings)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'orderflow;dev;help;env' {
            break
        }
        'orderflow;dev;help;help' {
            break
        }
        'orderflow;demo' {
            [CompletionResult]::new('--listen', '--listen', [CompletionResultType]::ParameterName, 'Serve the order API and page (`orderflow serve`) here [default: 127.0.0.1:8080, or a free loopback port when it is taken]')
            [CompletionResult]::new('--address', '--address', [CompletionResultType]::ParameterName, 'Temporal frontend address; TEMPORAL_HOST_PORT is read too [default: the profile''s, else localhost:7233]')
            [CompletionResult]::new('--namespace', '--namespace', [CompletionResultType]::ParameterName, 'Temporal namespace [default: the profile''s, else default]')
            [CompletionResult]::new('--task-queue', '--task-queue', [CompletionResultType]::ParameterName, 'Task queue the worker polls and orders are sent to [default: orderflow]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Profile to read from the Temporal CLI''s config file')
            [CompletionResult]::new('--config-file', '--config-file', [CompletionResultType]::ParameterName, 'The Temporal CLI''s config file [default: its own, temporal.toml]')
            [CompletionResult]::new('--ui-url', '--ui-url', [CompletionResultType]::ParameterName, 'Web UI base for order links [default: the address''s host, port 8233]')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'How long to wait for Temporal or PostgreSQL to answer before giving up (exit 8)')
            [CompletionResult]::new('--encryption-key-file', '--encryption-key-file', [CompletionResultType]::ParameterName, 'Encrypt every payload sent to Temporal with the keys in this file: one KEY_ID:BASE64_OF_32_BYTES per line, the first encrypts, all decrypt; it must be readable by its owner only')
            [CompletionResult]::new('--api-key', '--api-key', [CompletionResultType]::ParameterName, 'API key for Temporal Cloud; turns TLS on. Never printed')
            [CompletionResult]::new('--tls-cert-path', '--tls-cert-path', [CompletionResultType]::ParameterName, 'Client certificate for mTLS')
            [CompletionResult]::new('--tls-key-path', '--tls-key-path', [CompletionResultType]::ParameterName, 'Client private key for mTLS')
            [CompletionResult]::new('--tls-ca-path', '--tls-ca-path', [CompletionResultType]::ParameterName, 'CA certificate to verify the server with')
            [CompletionResult]::new('--tls-server-name', '--tls-server-name', [CompletionResultType]::ParameterName, 'Server name to verify the certificate against')
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'PostgreSQL URL, postgres://USER:PASSWORD@HOST:PORT/DB; when unset, built from POSTGRES_HOST, POSTGRES_PORT, POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DB. Its password is never printed')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format for data on stdout: text for people, json for scripts, jsonl (JSON Lines) for the changes `order watch` follows')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format for data on stdout: text for people, json for scripts, jsonl (JSON Lines) for the changes `order watch` follows')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour; NO_COLOR turns it off under auto')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log line format on stderr [default: json with -o json or jsonl, else text]')
            [CompletionResult]::new('--keep', '--keep', [CompletionResultType]::ParameterName, 'Leave the stack running after the demo')
            [CompletionResult]::new('--encrypt', '--encrypt', [CompletionResultType]::ParameterName, 'Encrypt every payload: with --encryption-key-file''s keys, else a throwaway key; the Web UI decodes through a codec server this command runs on 127.0.0.1')
            [CompletionResult]::new('--tls', '--tls', [CompletionResultType]::ParameterName, 'Connect to Temporal over TLS')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log detail on stderr (-v, -vv, -vvv); RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log detail on stderr (-v, -vv, -vvv); RUST_LOG overrides')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr: no progress, notes or warnings')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr: no progress, notes or warnings')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'orderflow;bench' {
            [CompletionResult]::new('--orders', '--orders', [CompletionResultType]::ParameterName, 'Orders per throughput run (N), split over the rounds')
            [CompletionResult]::new('--concurrency', '--concurrency', [CompletionResultType]::ParameterName, 'Orders in flight during the throughput runs (C)')
            [CompletionResult]::new('--rounds', '--rounds', [CompletionResultType]::ParameterName, 'Alternate baseline and orderflow over this many rounds (N/rounds each time), swapping which goes first, so drift in the machine''s or the server''s speed hits both alike')
            [CompletionResult]::new('--single', '--single', [CompletionResultType]::ParameterName, 'Sequential orders for single-order latency (R)')
            [CompletionResult]::new('--in-flight', '--in-flight', [CompletionResultType]::ParameterName, 'Orders started at once for the memory measurement (M)')
            [CompletionResult]::new('--workers', '--workers', [CompletionResultType]::ParameterName, 'Separate worker processes on the real path (W)')
            [CompletionResult]::new('--hot', '--hot', [CompletionResultType]::ParameterName, 'Orders for the one-product run (H), on a stock of H/2; 0 skips it')
            [CompletionResult]::new('--big-tables', '--big-tables', [CompletionResultType]::ParameterName, 'Also fill the orders table to this many rows and time `order list` (with each filter, and a deep page), `order status` and `audit --all --database-only`, each as a whole process; 0 skips it')
            [CompletionResult]::new('--api-orders', '--api-orders', [CompletionResultType]::ParameterName, 'Orders per round and way for the API run: started through `POST /api/orders` of an `orderflow serve` process, and by this process''s client, alternating (0: no API run)')
            [CompletionResult]::new('--streams', '--streams', [CompletionResultType]::ParameterName, 'Events streams one `serve` process holds open at once in the API run, for its memory and CPU (at most the orders it started: --api-orders × --rounds; 0: none)')
            [CompletionResult]::new('--rate', '--rate', [CompletionResultType]::ParameterName, 'Open loop on the real path: start orders at this steady rate for --rate-duration, whether or not earlier ones have ended, and report latency start -> COMPLETED. Orders a second (40, 40/s) or a share of the maximum the throughput run measured (80%); a list for a curve: 25%,50%,80%,100%')
            [CompletionResult]::new('--rate-duration', '--rate-duration', [CompletionResultType]::ParameterName, 'How long each --rate starts orders')
            [CompletionResult]::new('--address', '--address', [CompletionResultType]::ParameterName, 'Temporal frontend address; TEMPORAL_HOST_PORT is read too [default: the profile''s, else localhost:7233]')
            [CompletionResult]::new('--namespace', '--namespace', [CompletionResultType]::ParameterName, 'Temporal namespace [default: the profile''s, else default]')
            [CompletionResult]::new('--task-queue', '--task-queue', [CompletionResultType]::ParameterName, 'Task queue the worker polls and orders are sent to [default: orderflow]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Profile to read from the Temporal CLI''s config file')
            [CompletionResult]::new('--config-file', '--config-file', [CompletionResultType]::ParameterName, 'The Temporal CLI''s config file [default: its own, temporal.toml]')
            [CompletionResult]::new('--ui-url', '--ui-url', [CompletionResultType]::ParameterName, 'Web UI base for order links [default: the address''s host, port 8233]')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'How long to wait for Temporal or PostgreSQL to answer before giving up (exit 8)')
            [CompletionResult]::new('--encryption-key-file', '--encryption-key-file', [CompletionResultType]::ParameterName, 'Encrypt every payload sent to Temporal with the keys in this file: one KEY_ID:BASE64_OF_32_BYTES per line, the first encrypts, all decrypt; it must be readable by its owner only')
            [CompletionResult]::new('--api-key', '--api-key', [CompletionResultType]::ParameterName, 'API key for Temporal Cloud; turns TLS on. Never printed')
            [CompletionResult]::new('--tls-cert-path', '--tls-cert-path', [CompletionResultType]::ParameterName, 'Client certificate for mTLS')
            [CompletionResult]::new('--tls-key-path', '--tls-key-path', [CompletionResultType]::ParameterName, 'Client private key for mTLS')
            [CompletionResult]::new('--tls-ca-path', '--tls-ca-path', [CompletionResultType]::ParameterName, 'CA certificate to verify the server with')
            [CompletionResult]::new('--tls-server-name', '--tls-server-name', [CompletionResultType]::ParameterName, 'Server name to verify the certificate against')
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'PostgreSQL URL, postgres://USER:PASSWORD@HOST:PORT/DB; when unset, built from POSTGRES_HOST, POSTGRES_PORT, POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DB. Its password is never printed')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format for data on stdout: text for people, json for scripts, jsonl (JSON Lines) for the changes `order watch` follows')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format for data on stdout: text for people, json for scripts, jsonl (JSON Lines) for the changes `order watch` follows')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour; NO_COLOR turns it off under auto')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log line format on stderr [default: json with -o json or jsonl, else text]')
            [CompletionResult]::new('--no-eager', '--no-eager', [CompletionResultType]::ParameterName, 'Start the in-process run''s workflows without eager start too')
            [CompletionResult]::new('--metrics', '--metrics', [CompletionResultType]::ParameterName, 'Record the worker''s metrics as `worker --metrics-address` does (to measure what they cost)')
            [CompletionResult]::new('--encrypt', '--encrypt', [CompletionResultType]::ParameterName, 'Encrypt every payload, as with --encryption-key-file (a throwaway key unless one is given), to measure what encryption costs')
            [CompletionResult]::new('--tls', '--tls', [CompletionResultType]::ParameterName, 'Connect to Temporal over TLS')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log detail on stderr (-v, -vv, -vvv); RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log detail on stderr (-v, -vv, -vvv); RUST_LOG overrides')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr: no progress, notes or warnings')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr: no progress, notes or warnings')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'orderflow;codec-server' {
            [CompletionResult]::new('--listen', '--listen', [CompletionResultType]::ParameterName, 'Address to listen on')
            [CompletionResult]::new('--allow-origin', '--allow-origin', [CompletionResultType]::ParameterName, 'An origin a browser may call from (the Web UI''s, e.g. http://localhost:8233); repeat for several, `*` for any')
            [CompletionResult]::new('--auth-token-file', '--auth-token-file', [CompletionResultType]::ParameterName, 'Require `Authorization: Bearer <token>` with the token in this file (mode 0600); needed to listen on an address other machines reach')
            [CompletionResult]::new('--allow-host', '--allow-host', [CompletionResultType]::ParameterName, 'A host name requests may be addressed to (their `Host` header), besides localhost, loopback addresses and --listen''s; repeat for several. Others are refused, so a web page cannot reach the server through a name of its own that points here')
            [CompletionResult]::new('--address', '--address', [CompletionResultType]::ParameterName, 'Temporal frontend address; TEMPORAL_HOST_PORT is read too [default: the profile''s, else localhost:7233]')
            [CompletionResult]::new('--namespace', '--namespace', [CompletionResultType]::ParameterName, 'Temporal namespace [default: the profile''s, else default]')
            [CompletionResult]::new('--task-queue', '--task-queue', [CompletionResultType]::ParameterName, 'Task queue the worker polls and orders are sent to [default: orderflow]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Profile to read from the Temporal CLI''s config file')
            [CompletionResult]::new('--config-file', '--config-file', [CompletionResultType]::ParameterName, 'The Temporal CLI''s config file [default: its own, temporal.toml]')
            [CompletionResult]::new('--ui-url', '--ui-url', [CompletionResultType]::ParameterName, 'Web UI base for order links [default: the address''s host, port 8233]')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'How long to wait for Temporal or PostgreSQL to answer before giving up (exit 8)')
            [CompletionResult]::new('--encryption-key-file', '--encryption-key-file', [CompletionResultType]::ParameterName, 'Encrypt every payload sent to Temporal with the keys in this file: one KEY_ID:BASE64_OF_32_BYTES per line, the first encrypts, all decrypt; it must be readable by its owner only')
            [CompletionResult]::new('--api-key', '--api-key', [CompletionResultType]::ParameterName, 'API key for Temporal Cloud; turns TLS on. Never printed')
            [CompletionResult]::new('--tls-cert-path', '--tls-cert-path', [CompletionResultType]::ParameterName, 'Client certificate for mTLS')
            [CompletionResult]::new('--tls-key-path', '--tls-key-path', [CompletionResultType]::ParameterName, 'Client private key for mTLS')
            [CompletionResult]::new('--tls-ca-path', '--tls-ca-path', [CompletionResultType]::ParameterName, 'CA certificate to verify the server with')
            [CompletionResult]::new('--tls-server-name', '--tls-server-name', [CompletionResultType]::ParameterName, 'Server name to verify the certificate against')
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'PostgreSQL URL, postgres://USER:PASSWORD@HOST:PORT/DB; when unset, built from POSTGRES_HOST, POSTGRES_PORT, POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DB. Its password is never printed')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format for data on stdout: text for people, json for scripts, jsonl (JSON Lines) for the changes `order watch` follows')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format for data on stdout: text for people, json for scripts, jsonl (JSON Lines) for the changes `order watch` follows')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour; NO_COLOR turns it off under auto')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log line format on stderr [default: json with -o json or jsonl, else text]')
            [CompletionResult]::new('--tls', '--tls', [CompletionResultType]::ParameterName, 'Connect to Temporal over TLS')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log detail on stderr (-v, -vv, -vvv); RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log detail on stderr (-v, -vv, -vvv); RUST_LOG overrides')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr: no progress, notes or warnings')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr: no progress, notes or warnings')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'orderflow;serve' {
            [CompletionResult]::new('--listen', '--listen', [CompletionResultType]::ParameterName, 'Address to listen on; one other machines reach needs --api-token-file or --no-auth')
            [CompletionResult]::new('--api-token-file', '--api-token-file', [CompletionResultType]::ParameterName, 'Require `Authorization: Bearer <token>` on /api with one of the tokens in this file, one a line (mode 0600); the page asks for one')
            [CompletionResult]::new('--max-body', '--max-body', [CompletionResultType]::ParameterName, 'The largest request body accepted (e.g. 1MiB, 256KiB, 65536)')
            [CompletionResult]::new('--request-timeout', '--request-timeout', [CompletionResultType]::ParameterName, 'Time a request may take to be answered, its body included (not the events stream, which lasts until its order ends)')
            [CompletionResult]::new('--header-timeout', '--header-timeout', [CompletionResultType]::ParameterName, 'Time a client has to send a request''s headers: a slow or silent client does not hold a connection open')
            [CompletionResult]::new('--max-connections', '--max-connections', [CompletionResultType]::ParameterName, 'At most this many connections at once; more wait to be accepted')
            [CompletionResult]::new('--allow-origin', '--allow-origin', [CompletionResultType]::ParameterName, 'An origin a browser may call the API from (CORS), e.g. https://shop.example; repeat for several, `*` for any [default: none]')
            [CompletionResult]::new('--allow-host', '--allow-host', [CompletionResultType]::ParameterName, 'A host name requests may be addressed to without a token (their `Host` header), besides localhost, loopback addresses and --listen''s; repeat for several')
            [CompletionResult]::new('--metrics-address', '--metrics-address', [CompletionResultType]::ParameterName, 'Serve /metrics (Prometheus: requests by route and status, latency) on this address (off by default)')
            [CompletionResult]::new('--address', '--address', [CompletionResultType]::ParameterName, 'Temporal frontend address; TEMPORAL_HOST_PORT is read too [default: the profile''s, else localhost:7233]')
            [CompletionResult]::new('--namespace', '--namespace', [CompletionResultType]::ParameterName, 'Temporal namespace [default: the profile''s, else default]')
            [CompletionResult]::new('--task-queue', '--task-queue', [CompletionResultType]::ParameterName, 'Task queue the worker polls and orders are sent to [default: orderflow]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Profile to read from the Temporal CLI''s config file')
            [CompletionResult]::new('--config-file', '--config-file', [CompletionResultType]::ParameterName, 'The Temporal CLI''s config file [default: its own, temporal.toml]')
            [CompletionResult]::new('--ui-url', '--ui-url', [CompletionResultType]::ParameterName, 'Web UI base for order links [default: the address''s host, port 8233]')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'How long to wait for Temporal or PostgreSQL to answer before giving up (exit 8)')
            [CompletionResult]::new('--encryption-key-file', '--encryption-key-file', [CompletionResultType]::ParameterName, 'Encrypt every payload sent to Temporal with the keys in this file: one KEY_ID:BASE64_OF_32_BYTES per line, the first encrypts, all decrypt; it must be readable by its owner only')
            [CompletionResult]::new('--api-key', '--api-key', [CompletionResultType]::ParameterName, 'API key for Temporal Cloud; turns TLS on. Never printed')
            [CompletionResult]::new('--tls-cert-path', '--tls-cert-path', [CompletionResultType]::ParameterName, 'Client certificate for mTLS')
            [CompletionResult]::new('--tls-key-path', '--tls-key-path', [CompletionResultType]::ParameterName, 'Client private key for mTLS')
            [CompletionResult]::new('--tls-ca-path', '--tls-ca-path', [CompletionResultType]::ParameterName, 'CA certificate to verify the server with')
            [CompletionResult]::new('--tls-server-name', '--tls-server-name', [CompletionResultType]::ParameterName, 'Server name to verify the certificate against')
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'PostgreSQL URL, postgres://USER:PASSWORD@HOST:PORT/DB; when unset, built from POSTGRES_HOST, POSTGRES_PORT, POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DB. Its password is never printed')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format for data on stdout: text for people, json for scripts, jsonl (JSON Lines) for the changes `order watch` follows')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format for data on stdout: text for people, json for scripts, jsonl (JSON Lines) for the changes `order watch` follows')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour; NO_COLOR turns it off under auto')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log line format on stderr [default: json with -o json or jsonl, else text]')
            [CompletionResult]::new('--no-auth', '--no-auth', [CompletionResultType]::ParameterName, 'Listen beyond loopback without a token (behind a proxy that authenticates); requests must still be addressed to a loopback name, the listening address or an --allow-host')
            [CompletionResult]::new('--openapi', '--openapi', [CompletionResultType]::ParameterName, 'Print the OpenAPI document and exit')
            [CompletionResult]::new('--tls', '--tls', [CompletionResultType]::ParameterName, 'Connect to Temporal over TLS')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log detail on stderr (-v, -vv, -vvv); RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log detail on stderr (-v, -vv, -vvv); RUST_LOG overrides')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr: no progress, notes or warnings')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr: no progress, notes or warnings')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'orderflow;doctor' {
            [CompletionResult]::new('--address', '--address', [CompletionResultType]::ParameterName, 'Temporal frontend address; TEMPORAL_HOST_PORT is read too [default: the profile''s, else localhost:7233]')
            [CompletionResult]::new('--namespace', '--namespace', [CompletionResultType]::ParameterName, 'Temporal namespace [default: the profile''s, else default]')
            [CompletionResult]::new('--task-queue', '--task-queue', [CompletionResultType]::ParameterName, 'Task queue the worker polls and orders are sent to [default: orderflow]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Profile to read from the Temporal CLI''s config file')
            [CompletionResult]::new('--config-file', '--config-file', [CompletionResultType]::ParameterName, 'The Temporal CLI''s config file [default: its own, temporal.toml]')
            [CompletionResult]::new('--ui-url', '--ui-url', [CompletionResultType]::ParameterName, 'Web UI base for order links [default: the address''s host, port 8233]')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'How long to wait for Temporal or PostgreSQL to answer before giving up (exit 8)')
            [CompletionResult]::new('--encryption-key-file', '--encryption-key-file', [CompletionResultType]::ParameterName, 'Encrypt every payload sent to Temporal with the keys in this file: one KEY_ID:BASE64_OF_32_BYTES per line, the first encrypts, all decrypt; it must be readable by its owner only')
            [CompletionResult]::new('--api-key', '--api-key', [CompletionResultType]::ParameterName, 'API key for Temporal Cloud; turns TLS on. Never printed')
            [CompletionResult]::new('--tls-cert-path', '--tls-cert-path', [CompletionResultType]::ParameterName, 'Client certificate for mTLS')
            [CompletionResult]::new('--tls-key-path', '--tls-key-path', [CompletionResultType]::ParameterName, 'Client private key for mTLS')
            [CompletionResult]::new('--tls-ca-path', '--tls-ca-path', [CompletionResultType]::ParameterName, 'CA certificate to verify the server with')
            [CompletionResult]::new('--tls-server-name', '--tls-server-name', [CompletionResultType]::ParameterName, 'Server name to verify the certificate against')
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'PostgreSQL URL, postgres://USER:PASSWORD@HOST:PORT/DB; when unset, built from POSTGRES_HOST, POSTGRES_PORT, POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DB. Its password is never printed')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format for data on stdout: text for people, json for scripts, jsonl (JSON Lines) for the changes `order watch` follows')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format for data on stdout: text for people, json for scripts, jsonl (JSON Lines) for the changes `order watch` follows')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour; NO_COLOR turns it off under auto')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log line format on stderr [default: json with -o json or jsonl, else text]')
            [CompletionResult]::new('--tls', '--tls', [CompletionResultType]::ParameterName, 'Connect to Temporal over TLS')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log detail on stderr (-v, -vv, -vvv); RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log detail on stderr (-v, -vv, -vvv); RUST_LOG overrides')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr: no progress, notes or warnings')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr: no progress, notes or warnings')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'orderflow;audit' {
            [CompletionResult]::new('--since', '--since', [CompletionResultType]::ParameterName, 'Only the orders created in the last DURATION (e.g. 1h, 7d)')
            [CompletionResult]::new('--stuck-after', '--stuck-after', [CompletionResultType]::ParameterName, 'An order not ended this long after it was created is stuck')
            [CompletionResult]::new('--address', '--address', [CompletionResultType]::ParameterName, 'Temporal frontend address; TEMPORAL_HOST_PORT is read too [default: the profile''s, else localhost:7233]')
            [CompletionResult]::new('--namespace', '--namespace', [CompletionResultType]::ParameterName, 'Temporal namespace [default: the profile''s, else default]')
            [CompletionResult]::new('--task-queue', '--task-queue', [CompletionResultType]::ParameterName, 'Task queue the worker polls and orders are sent to [default: orderflow]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Profile to read from the Temporal CLI''s config file')
            [CompletionResult]::new('--config-file', '--config-file', [CompletionResultType]::ParameterName, 'The Temporal CLI''s config file [default: its own, temporal.toml]')
            [CompletionResult]::new('--ui-url', '--ui-url', [CompletionResultType]::ParameterName, 'Web UI base for order links [default: the address''s host, port 8233]')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'How long to wait for Temporal or PostgreSQL to answer before giving up (exit 8)')
            [CompletionResult]::new('--encryption-key-file', '--encryption-key-file', [CompletionResultType]::ParameterName, 'Encrypt every payload sent to Temporal with the keys in this file: one KEY_ID:BASE64_OF_32_BYTES per line, the first encrypts, all decrypt; it must be readable by its owner only')
            [CompletionResult]::new('--api-key', '--api-key', [CompletionResultType]::ParameterName, 'API key for Temporal Cloud; turns TLS on. Never printed')
            [CompletionResult]::new('--tls-cert-path', '--tls-cert-path', [CompletionResultType]::ParameterName, 'Client certificate for mTLS')
            [CompletionResult]::new('--tls-key-path', '--tls-key-path', [CompletionResultType]::ParameterName, 'Client private key for mTLS')
            [CompletionResult]::new('--tls-ca-path', '--tls-ca-path', [CompletionResultType]::ParameterName, 'CA certificate to verify the server with')
            [CompletionResult]::new('--tls-server-name', '--tls-server-name', [CompletionResultType]::ParameterName, 'Server name to verify the certificate against')
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'PostgreSQL URL, postgres://USER:PASSWORD@HOST:PORT/DB; when unset, built from POSTGRES_HOST, POSTGRES_PORT, POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DB. Its password is never printed')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format for data on stdout: text for people, json for scripts, jsonl (JSON Lines) for the changes `order watch` follows')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format for data on stdout: text for people, json for scripts, jsonl (JSON Lines) for the changes `order watch` follows')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour; NO_COLOR turns it off under auto')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log line format on stderr [default: json with -o json or jsonl, else text]')
            [CompletionResult]::new('--all', '--all', [CompletionResultType]::ParameterName, 'Every order, however old')
            [CompletionResult]::new('--database-only', '--database-only', [CompletionResultType]::ParameterName, 'Check only what PostgreSQL holds (money, stock, notices), without Temporal')
            [CompletionResult]::new('--tls', '--tls', [CompletionResultType]::ParameterName, 'Connect to Temporal over TLS')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log detail on stderr (-v, -vv, -vvv); RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log detail on stderr (-v, -vv, -vvv); RUST_LOG overrides')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr: no progress, notes or warnings')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr: no progress, notes or warnings')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'orderflow;replay' {
            [CompletionResult]::new('--since', '--since', [CompletionResultType]::ParameterName, 'The orders of the task queue started in the last DURATION')
            [CompletionResult]::new('--sample', '--sample', [CompletionResultType]::ParameterName, 'At most N of those orders, picked at random')
            [CompletionResult]::new('--id', '--id', [CompletionResultType]::ParameterName, 'This order''s history (repeatable), instead of the recent ones')
            [CompletionResult]::new('--dir', '--dir', [CompletionResultType]::ParameterName, 'The exported histories in DIR (every .json file, as `temporal workflow show -o json` writes them), instead of the server''s')
            [CompletionResult]::new('--address', '--address', [CompletionResultType]::ParameterName, 'Temporal frontend address; TEMPORAL_HOST_PORT is read too [default: the profile''s, else localhost:7233]')
            [CompletionResult]::new('--namespace', '--namespace', [CompletionResultType]::ParameterName, 'Temporal namespace [default: the profile''s, else default]')
            [CompletionResult]::new('--task-queue', '--task-queue', [CompletionResultType]::ParameterName, 'Task queue the worker polls and orders are sent to [default: orderflow]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Profile to read from the Temporal CLI''s config file')
            [CompletionResult]::new('--config-file', '--config-file', [CompletionResultType]::ParameterName, 'The Temporal CLI''s config file [default: its own, temporal.toml]')
            [CompletionResult]::new('--ui-url', '--ui-url', [CompletionResultType]::ParameterName, 'Web UI base for order links [default: the address''s host, port 8233]')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'How long to wait for Temporal or PostgreSQL to answer before giving up (exit 8)')
            [CompletionResult]::new('--encryption-key-file', '--encryption-key-file', [CompletionResultType]::ParameterName, 'Encrypt every payload sent to Temporal with the keys in this file: one KEY_ID:BASE64_OF_32_BYTES per line, the first encrypts, all decrypt; it must be readable by its owner only')
            [CompletionResult]::new('--api-key', '--api-key', [CompletionResultType]::ParameterName, 'API key for Temporal Cloud; turns TLS on. Never printed')
            [CompletionResult]::new('--tls-cert-path', '--tls-cert-path', [CompletionResultType]::ParameterName, 'Client certificate for mTLS')
            [CompletionResult]::new('--tls-key-path', '--tls-key-path', [CompletionResultType]::ParameterName, 'Client private key for mTLS')
            [CompletionResult]::new('--tls-ca-path', '--tls-ca-path', [CompletionResultType]::ParameterName, 'CA certificate to verify the server with')
            [CompletionResult]::new('--tls-server-name', '--tls-server-name', [CompletionResultType]::ParameterName, 'Server name to verify the certificate against')
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'PostgreSQL URL, postgres://USER:PASSWORD@HOST:PORT/DB; when unset, built from POSTGRES_HOST, POSTGRES_PORT, POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DB. Its password is never printed')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format for data on stdout: text for people, json for scripts, jsonl (JSON Lines) for the changes `order watch` follows')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format for data on stdout: text for people, json for scripts, jsonl (JSON Lines) for the changes `order watch` follows')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour; NO_COLOR turns it off under auto')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log line format on stderr [default: json with -o json or jsonl, else text]')
            [CompletionResult]::new('--tls', '--tls', [CompletionResultType]::ParameterName, 'Connect to Temporal over TLS')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log detail on stderr (-v, -vv, -vvv); RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log detail on stderr (-v, -vv, -vvv); RUST_LOG overrides')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr: no progress, notes or warnings')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr: no progress, notes or warnings')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'orderflow;completions' {
            [CompletionResult]::new('--address', '--address', [CompletionResultType]::ParameterName, 'Temporal frontend address; TEMPORAL_HOST_PORT is read too [default: the profile''s, else localhost:7233]')
            [CompletionResult]::new('--namespace', '--namespace', [CompletionResultType]::ParameterName, 'Temporal namespace [default: the profile''s, else default]')
            [CompletionResult]::new('--task-queue', '--task-queue', [CompletionResultType]::ParameterName, 'Task queue the worker polls and orders are sent to [default: orderflow]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Profile to read from the Temporal CLI''s config file')
            [CompletionResult]::new('--config-file', '--config-file', [CompletionResultType]::ParameterName, 'The Temporal CLI''s config file [default: its own, temporal.toml]')
            [CompletionResult]::new('--ui-url', '--ui-url', [CompletionResultType]::ParameterName, 'Web UI base for order links [default: the address''s host, port 8233]')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'How long to wait for Temporal or PostgreSQL to answer before giving up (exit 8)')
            [CompletionResult]::new('--encryption-key-file', '--encryption-key-file', [CompletionResultType]::ParameterName, 'Encrypt every payload sent to Temporal with the keys in this file: one KEY_ID:BASE64_OF_32_BYTES per line, the first encrypts, all decrypt; it must be readable by its owner only')
            [CompletionResult]::new('--api-key', '--api-key', [CompletionResultType]::ParameterName, 'API key for Temporal Cloud; turns TLS on. Never printed')
            [CompletionResult]::new('--tls-cert-path', '--tls-cert-path', [CompletionResultType]::ParameterName, 'Client certificate for mTLS')
            [CompletionResult]::new('--tls-key-path', '--tls-key-path', [CompletionResultType]::ParameterName, 'Client private key for mTLS')
            [CompletionResult]::new('--tls-ca-path', '--tls-ca-path', [CompletionResultType]::ParameterName, 'CA certificate to verify the server with')
            [CompletionResult]::new('--tls-server-name', '--tls-server-name', [CompletionResultType]::ParameterName, 'Server name to verify the certificate against')
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'PostgreSQL URL, postgres://USER:PASSWORD@HOST:PORT/DB; when unset, built from POSTGRES_HOST, POSTGRES_PORT, POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DB. Its password is never printed')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format for data on stdout: text for people, json for scripts, jsonl (JSON Lines) for the changes `order watch` follows')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format for data on stdout: text for people, json for scripts, jsonl (JSON Lines) for the changes `order watch` follows')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour; NO_COLOR turns it off under auto')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log line format on stderr [default: json with -o json or jsonl, else text]')
            [CompletionResult]::new('--tls', '--tls', [CompletionResultType]::ParameterName, 'Connect to Temporal over TLS')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log detail on stderr (-v, -vv, -vvv); RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log detail on stderr (-v, -vv, -vvv); RUST_LOG overrides')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr: no progress, notes or warnings')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr: no progress, notes or warnings')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'orderflow;man' {
            [CompletionResult]::new('--out-dir', '--out-dir', [CompletionResultType]::ParameterName, 'Write every page (orderflow.1, orderflow-order-create.1, …) into DIR instead of printing orderflow.1')
            [CompletionResult]::new('--address', '--address', [CompletionResultType]::ParameterName, 'Temporal frontend address; TEMPORAL_HOST_PORT is read too [default: the profile''s, else localhost:7233]')
            [CompletionResult]::new('--namespace', '--namespace', [CompletionResultType]::ParameterName, 'Temporal namespace [default: the profile''s, else default]')
            [CompletionResult]::new('--task-queue', '--task-queue', [CompletionResultType]::ParameterName, 'Task queue the worker polls and orders are sent to [default: orderflow]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Profile to read from the Temporal CLI''s config file')
            [CompletionResult]::new('--config-file', '--config-file', [CompletionResultType]::ParameterName, 'The Temporal CLI''s config file [default: its own, temporal.toml]')
            [CompletionResult]::new('--ui-url', '--ui-url', [CompletionResultType]::ParameterName, 'Web UI base for order links [default: the address''s host, port 8233]')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'How long to wait for Temporal or PostgreSQL to answer before giving up (exit 8)')
            [CompletionResult]::new('--encryption-key-file', '--encryption-key-file', [CompletionResultType]::ParameterName, 'Encrypt every payload sent to Temporal with the keys in this file: one KEY_ID:BASE64_OF_32_BYTES per line, the first encrypts, all decrypt; it must be readable by its owner only')
            [CompletionResult]::new('--api-key', '--api-key', [CompletionResultType]::ParameterName, 'API key for Temporal Cloud; turns TLS on. Never printed')
            [CompletionResult]::new('--tls-cert-path', '--tls-cert-path', [CompletionResultType]::ParameterName, 'Client certificate for mTLS')
            [CompletionResult]::new('--tls-key-path', '--tls-key-path', [CompletionResultType]::ParameterName, 'Client private key for mTLS')
            [CompletionResult]::new('--tls-ca-path', '--tls-ca-path', [CompletionResultType]::ParameterName, 'CA certificate to verify the server with')
            [CompletionResult]::new('--tls-server-name', '--tls-server-name', [CompletionResultType]::ParameterName, 'Server name to verify the certificate against')
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'PostgreSQL URL, postgres://USER:PASSWORD@HOST:PORT/DB; when unset, built from POSTGRES_HOST, POSTGRES_PORT, POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DB. Its password is never printed')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format for data on stdout: text for people, json for scripts, jsonl (JSON Lines) for the changes `order watch` follows')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format for data on stdout: text for people, json for scripts, jsonl (JSON Lines) for the changes `order watch` follows')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour; NO_COLOR turns it off under auto')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log line format on stderr [default: json with -o json or jsonl, else text]')
            [CompletionResult]::new('--tls', '--tls', [CompletionResultType]::ParameterName, 'Connect to Temporal over TLS')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log detail on stderr (-v, -vv, -vvv); RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log detail on stderr (-v, -vv, -vvv); RUST_LOG overrides')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr: no progress, notes or warnings')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr: no progress, notes or warnings')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'orderflow;options' {
            [CompletionResult]::new('--address', '--address', [CompletionResultType]::ParameterName, 'Temporal frontend address; TEMPORAL_HOST_PORT is read too [default: the profile''s, else localhost:7233]')
            [CompletionResult]::new('--namespace', '--namespace', [CompletionResultType]::ParameterName, 'Temporal namespace [default: the profile''s, else default]')
            [CompletionResult]::new('--task-queue', '--task-queue', [CompletionResultType]::ParameterName, 'Task queue the worker polls and orders are sent to [default: orderflow]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Profile to read from the Temporal CLI''s config file')
            [CompletionResult]::new('--config-file', '--config-file', [CompletionResultType]::ParameterName, 'The Temporal CLI''s config file [default: its own, temporal.toml]')
            [CompletionResult]::new('--ui-url', '--ui-url', [CompletionResultType]::ParameterName, 'Web UI base for order links [default: the address''s host, port 8233]')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'How long to wait for Temporal or PostgreSQL to answer before giving up (exit 8)')
            [CompletionResult]::new('--encryption-key-file', '--encryption-key-file', [CompletionResultType]::ParameterName, 'Encrypt every payload sent to Temporal with the keys in this file: one KEY_ID:BASE64_OF_32_BYTES per line, the first encrypts, all decrypt; it must be readable by its owner only')
            [CompletionResult]::new('--api-key', '--api-key', [CompletionResultType]::ParameterName, 'API key for Temporal Cloud; turns TLS on. Never printed')
            [CompletionResult]::new('--tls-cert-path', '--tls-cert-path', [CompletionResultType]::ParameterName, 'Client certificate for mTLS')
            [CompletionResult]::new('--tls-key-path', '--tls-key-path', [CompletionResultType]::ParameterName, 'Client private key for mTLS')
            [CompletionResult]::new('--tls-ca-path', '--tls-ca-path', [CompletionResultType]::ParameterName, 'CA certificate to verify the server with')
            [CompletionResult]::new('--tls-server-name', '--tls-server-name', [CompletionResultType]::ParameterName, 'Server name to verify the certificate against')
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'PostgreSQL URL, postgres://USER:PASSWORD@HOST:PORT/DB; when unset, built from POSTGRES_HOST, POSTGRES_PORT, POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DB. Its password is never printed')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format for data on stdout: text for people, json for scripts, jsonl (JSON Lines) for the changes `order watch` follows')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format for data on stdout: text for people, json for scripts, jsonl (JSON Lines) for the changes `order watch` follows')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour; NO_COLOR turns it off under auto')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log line format on stderr [default: json with -o json or jsonl, else text]')
            [CompletionResult]::new('--tls', '--tls', [CompletionResultType]::ParameterName, 'Connect to Temporal over TLS')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log detail on stderr (-v, -vv, -vvv); RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log detail on stderr (-v, -vv, -vvv); RUST_LOG overrides')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr: no progress, notes or warnings')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr: no progress, notes or warnings')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'orderflow;help' {
            [CompletionResult]::new('worker', 'worker', [CompletionResultType]::ParameterValue, 'Run the order workflow and its activities until SIGINT/SIGTERM, then drain')
            [CompletionResult]::new('order', 'order', [CompletionResultType]::ParameterValue, 'Submit, inspect, follow and cancel orders')
            [CompletionResult]::new('db', 'db', [CompletionResultType]::ParameterValue, 'Apply, inspect and reset the PostgreSQL schema')
            [CompletionResult]::new('product', 'product', [CompletionResultType]::ParameterValue, 'Manage the catalog and the stock orders draw on')
            [CompletionResult]::new('dev', 'dev', [CompletionResultType]::ParameterValue, 'Start a local stack (Temporal dev server, PostgreSQL, worker) for development')
            [CompletionResult]::new('demo', 'demo', [CompletionResultType]::ParameterValue, 'Run the sample orders on a local stack and show how each one ends')
            [CompletionResult]::new('bench', 'bench', [CompletionResultType]::ParameterValue, 'Measure throughput, latency and memory against an orchestration-only baseline')
            [CompletionResult]::new('codec-server', 'codec-server', [CompletionResultType]::ParameterValue, 'Serve the Temporal remote codec protocol, so the Web UI and `temporal --codec-endpoint` show encrypted orders decrypted')
            [CompletionResult]::new('serve', 'serve', [CompletionResultType]::ParameterValue, 'Serve the order API and the order page over HTTP')
            [CompletionResult]::new('doctor', 'doctor', [CompletionResultType]::ParameterValue, 'Check the setup end to end and say how to fix what fails')
            [CompletionResult]::new('audit', 'audit', [CompletionResultType]::ParameterValue, 'Check money, stock and notices against how each order ended')
            [CompletionResult]::new('replay', 'replay', [CompletionResultType]::ParameterValue, 'Replay order histories against this binary''s workflow code')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print shell completions')
            [CompletionResult]::new('man', 'man', [CompletionResultType]::ParameterValue, 'Print or write man pages')
            [CompletionResult]::new('options', 'options', [CompletionResultType]::ParameterValue, 'The options every command takes: Temporal, TLS, database, output (also `orderflow help options`)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'orderflow;help;worker' {
            break
        }
        'orderflow;help;order' {
            [CompletionResult]::new('create', 'create', [CompletionResultType]::ParameterValue, 'Validate order files, then start one workflow per order')
            [CompletionResult]::new('status', 'status', [CompletionResultType]::ParameterValue, 'Show an order: status, step, attempts, failure, items and amounts')
            [CompletionResult]::new('watch', 'watch', [CompletionResultType]::ParameterValue, 'Follow orders until each reaches COMPLETED, CANCELLED or FAILED')
            [CompletionResult]::new('cancel', 'cancel', [CompletionResultType]::ParameterValue, 'Cancel an order and wait for the outcome, or many (a selection)')
            [CompletionResult]::new('resubmit', 'resubmit', [CompletionResultType]::ParameterValue, 'Start FAILED orders again as new orders (e.g. after a gateway outage)')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List orders, newest first')
            break
        }
        'orderflow;help;order;create' {
            break
        }
        'orderflow;help;order;status' {
            break
        }
        'orderflow;help;order;watch' {
            break
        }
        'orderflow;help;order;cancel' {
            break
        }
        'orderflow;help;order;resubmit' {
            break
        }
        'orderflow;help;order;list' {
            break
        }
        'orderflow;help;db' {
            [CompletionResult]::new('migrate', 'migrate', [CompletionResultType]::ParameterValue, 'Apply pending migrations (safe to repeat)')
            [CompletionResult]::new('status', 'status', [CompletionResultType]::ParameterValue, 'List applied and pending migrations')
            [CompletionResult]::new('reset', 'reset', [CompletionResultType]::ParameterValue, 'Drop everything orderflow stored and re-apply the migrations')
            break
        }
        'orderflow;help;db;migrate' {
            break
        }
        'orderflow;help;db;status' {
            break
        }
        'orderflow;help;db;reset' {
            break
        }
        'orderflow;help;product' {
            [CompletionResult]::new('import', 'import', [CompletionResultType]::ParameterValue, 'Insert or update products from a JSON file')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'Show the catalog with prices and stock')
            break
        }
        'orderflow;help;product;import' {
            break
        }
        'orderflow;help;product;list' {
            break
        }
        'orderflow;help;dev' {
            [CompletionResult]::new('env', 'env', [CompletionResultType]::ParameterValue, 'Print the running stack''s `export` lines again (`-o json`: its settings)')
            break
        }
        'orderflow;help;dev;env' {
            break
        }
        'orderflow;help;demo' {
            break
        }
        'orderflow;help;bench' {
            break
        }
        'orderflow;help;codec-server' {
            break
        }
        'orderflow;help;serve' {
            break
        }
        'orderflow;help;doctor' {
            break
        }
        'orderflow;help;audit' {
            break
        }
        'orderflow;help;replay' {
            break
        }
        'orderflow;help;completions' {
            break
        }
        'orderflow;help;man' {
            break
        }
        'orderflow;help;options' {
            break
        }
        'orderflow;help;help' {
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}
