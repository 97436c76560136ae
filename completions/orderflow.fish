# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_orderflow_global_optspecs
    string join \n address= namespace= task-queue= profile= config-file= ui-url= connect-timeout= encryption-key-file= api-key= tls tls-cert-path= tls-key-path= tls-ca-path= tls-server-name= database-url= o/output= color= v/verbose q/quiet log-format= h/help V/version
end

function __fish_orderflow_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_orderflow_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_orderflow_using_subcommand
    set -l cmd (__fish_orderflow_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c orderflow -n "__fish_orderflow_needs_command" -l address -d 'Temporal frontend address; TEMPORAL_HOST_PORT is read too [default: the profile\'s, else localhost:7233]' -r
complete -c orderflow -n "__fish_orderflow_needs_command" -l namespace -d 'Temporal namespace [default: the profile\'s, else default]' -r
complete -c orderflow -n "__fish_orderflow_needs_command" -l task-queue -d 'Task queue the worker polls and orders are sent to [default: orderflow]' -r
complete -c orderflow -n "__fish_orderflow_needs_command" -l profile -d 'Profile to read from the Temporal CLI\'s config file' -r
complete -c orderflow -n "__fish_orderflow_needs_command" -l config-file -d 'The Temporal CLI\'s config file [default: its own, temporal.toml]' -r -F
complete -c orderflow -n "__fish_orderflow_needs_command" -l ui-url -d 'Web UI base for order links [default: the address\'s host, port 8233]' -r
complete -c orderflow -n "__fish_orderflow_needs_command" -l connect-timeout -d 'How long to wait for Temporal or PostgreSQL to answer before giving up (exit 8)' -r
complete -c orderflow -n "__fish_orderflow_needs_command" -l encryption-key-file -d 'Encrypt every payload sent to Temporal with the keys in this file: one KEY_ID:BASE64_OF_32_BYTES per line, the first encrypts, all decrypt; it must be readable by its owner only' -r -F
complete -c orderflow -n "__fish_orderflow_needs_command" -l api-key -d 'API key for Temporal Cloud; turns TLS on. Never printed' -r
complete -c orderflow -n "__fish_orderflow_needs_command" -l tls-cert-path -d 'Client certificate for mTLS' -r -F
complete -c orderflow -n "__fish_orderflow_needs_command" -l tls-key-path -d 'Client private key for mTLS' -r -F
complete -c orderflow -n "__fish_orderflow_needs_command" -l tls-ca-path -d 'CA certificate to verify the server with' -r -F
complete -c orderflow -n "__fish_orderflow_needs_command" -l tls-server-name -d 'Server name to verify the certificate against' -r
complete -c orderflow -n "__fish_orderflow_needs_command" -l database-url -d 'PostgreSQL URL, postgres://USER:PASSWORD@HOST:PORT/DB; when unset, built from POSTGRES_HOST, POSTGRES_PORT, POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DB. Its password is never printed' -r
complete -c orderflow -n "__fish_orderflow_needs_command" -s o -l output -d 'Output format for data on stdout: text for people, json for scripts, jsonl (JSON Lines) for the changes `order watch` follows' -r -f -a "text\t'Tables and sentences for people'
json\t'Stable JSON on stdout (JSON Lines for `order watch` and `order create --watch`); errors as JSON on stderr'
jsonl\t'JSON Lines: one record per line for `order watch` and `order create` (with or without --watch); commands that print one document print it as with json'"
complete -c orderflow -n "__fish_orderflow_needs_command" -l color -d 'When to use colour; NO_COLOR turns it off under auto' -r -f -a "auto\t'Colour when writing to a terminal and `NO_COLOR` is not set'
always\t''
never\t''"
complete -c orderflow -n "__fish_orderflow_needs_command" -l log-format -d 'Log line format on stderr [default: json with -o json or jsonl, else text]' -r -f -a "text\t''
json\t''"
complete -c orderflow -n "__fish_orderflow_needs_command" -l tls -d 'Connect to Temporal over TLS'
complete -c orderflow -n "__fish_orderflow_needs_command" -s v -l verbose -d 'More log detail on stderr (-v, -vv, -vvv); RUST_LOG overrides'
complete -c orderflow -n "__fish_orderflow_needs_command" -s q -l quiet -d 'Only errors on stderr: no progress, notes or warnings'
complete -c orderflow -n "__fish_orderflow_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c orderflow -n "__fish_orderflow_needs_command" -s V -l version -d 'Print version'
complete -c orderflow -n "__fish_orderflow_needs_command" -f -a "worker" -d 'Run the order workflow and its activities until SIGINT/SIGTERM, then drain'
complete -c orderflow -n "__fish_orderflow_needs_command" -f -a "order" -d 'Submit, inspect, follow and cancel orders'
complete -c orderflow -n "__fish_orderflow_needs_command" -f -a "db" -d 'Apply, inspect and reset the PostgreSQL schema'
complete -c orderflow -n "__fish_orderflow_needs_command" -f -a "product" -d 'Manage the catalog and the stock orders draw on'
complete -c orderflow -n "__fish_orderflow_needs_command" -f -a "dev" -d 'Start a local stack (Temporal dev server, PostgreSQL, worker) for development'
complete -c orderflow -n "__fish_orderflow_needs_command" -f -a "demo" -d 'Run the sample orders on a local stack and show how each one ends'
complete -c orderflow -n "__fish_orderflow_needs_command" -f -a "bench" -d 'Measure throughput, latency and memory against an orchestration-only baseline'
complete -c orderflow -n "__fish_orderflow_needs_command" -f -a "codec-server" -d 'Serve the Temporal remote codec protocol, so the Web UI and `temporal --codec-endpoint` show encrypted orders decrypted'
complete -c orderflow -n "__fish_orderflow_needs_command" -f -a "serve" -d 'Serve the order API and the order page over HTTP'
complete -c orderflow -n "__fish_orderflow_needs_command" -f -a "doctor" -d 'Check the setup end to end and say how to fix what fails'
complete -c orderflow -n "__fish_orderflow_needs_command" -f -a "audit" -d 'Check money, stock and notices against how each order ended'
complete -c orderflow -n "__fish_orderflow_needs_command" -f -a "replay" -d 'Replay order histories against this binary\'s workflow code'
complete -c orderflow -n "__fish_orderflow_needs_command" -f -a "completions" -d 'Print shell completions'
complete -c orderflow -n "__fish_orderflow_needs_command" -f -a "man" -d 'Print or write man pages'
complete -c orderflow -n "__fish_orderflow_needs_command" -f -a "options" -d 'The options every command takes: Temporal, TLS, database, output (also `orderflow help options`)'
complete -c orderflow -n "__fish_orderflow_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c orderflow -n "__fish_orderflow_using_subcommand worker" -l retry-max-attempts -d 'Attempts per step before a transient failure fails the order' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand worker" -l retry-initial-interval -d 'Wait before the first retry' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand worker" -l retry-backoff -d 'Factor by which each wait grows' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand worker" -l retry-max-interval -d 'Longest wait between retries' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand worker" -l outage-timeout -d 'How long a step waits for PostgreSQL to come back before the order fails INTERNAL. Such waits are not attempts: an outage never uses up the retry budget or fails a payment' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand worker" -l max-concurrent-workflow-tasks -d 'Workflow tasks processed at once' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand worker" -l max-concurrent-workflow-task-polls -d 'Workflow-task polls kept open at once, sticky and not (the Temporal SDKs\' max concurrent workflow task polls)' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand worker" -l nonsticky-to-sticky-poll-ratio -d 'The share of those polls on the task queue itself rather than on this worker\'s sticky queue: new orders\' first tasks come from the former' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand worker" -l max-cached-workflows -d 'Workflows kept in memory between their tasks (the sticky cache)' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand worker" -l max-concurrent-activities -d 'Activities (local and remote) running at once' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand worker" -l db-max-connections -d 'Largest PostgreSQL connection pool the worker opens' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand worker" -l notify-webhook -d 'POST each customer notification as JSON here (with an Idempotency-Key header); without it, notifications are recorded and logged. Only its scheme, host and port are ever printed (a path may hold a token)' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand worker" -l notify-webhook-secret -d 'Sign each webhook delivery with this secret: an Orderflow-Signature header, t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")> (see DOCS.md for how a receiver checks it). Never logged' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand worker" -l metrics-address -d 'Serve /metrics (Prometheus), /healthz and /readyz on this address (off by default)' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand worker" -l notify-timeout -d 'Time limit of one webhook delivery. A delivery that gets no answer in time counts as an attempt that may have arrived: it is tried again (the receiver drops a repeat by its Idempotency-Key), and an order whose confirmation may have arrived is never cancelled' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand worker" -l shutdown-timeout -d 'How long to let in-flight tasks finish after SIGINT/SIGTERM' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand worker" -l address -d 'Temporal frontend address; TEMPORAL_HOST_PORT is read too [default: the profile\'s, else localhost:7233]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand worker" -l namespace -d 'Temporal namespace [default: the profile\'s, else default]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand worker" -l task-queue -d 'Task queue the worker polls and orders are sent to [default: orderflow]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand worker" -l profile -d 'Profile to read from the Temporal CLI\'s config file' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand worker" -l config-file -d 'The Temporal CLI\'s config file [default: its own, temporal.toml]' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand worker" -l ui-url -d 'Web UI base for order links [default: the address\'s host, port 8233]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand worker" -l connect-timeout -d 'How long to wait for Temporal or PostgreSQL to answer before giving up (exit 8)' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand worker" -l encryption-key-file -d 'Encrypt every payload sent to Temporal with the keys in this file: one KEY_ID:BASE64_OF_32_BYTES per line, the first encrypts, all decrypt; it must be readable by its owner only' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand worker" -l api-key -d 'API key for Temporal Cloud; turns TLS on. Never printed' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand worker" -l tls-cert-path -d 'Client certificate for mTLS' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand worker" -l tls-key-path -d 'Client private key for mTLS' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand worker" -l tls-ca-path -d 'CA certificate to verify the server with' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand worker" -l tls-server-name -d 'Server name to verify the certificate against' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand worker" -l database-url -d 'PostgreSQL URL, postgres://USER:PASSWORD@HOST:PORT/DB; when unset, built from POSTGRES_HOST, POSTGRES_PORT, POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DB. Its password is never printed' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand worker" -s o -l output -d 'Output format for data on stdout: text for people, json for scripts, jsonl (JSON Lines) for the changes `order watch` follows' -r -f -a "text\t'Tables and sentences for people'
json\t'Stable JSON on stdout (JSON Lines for `order watch` and `order create --watch`); errors as JSON on stderr'
jsonl\t'JSON Lines: one record per line for `order watch` and `order create` (with or without --watch); commands that print one document print it as with json'"
complete -c orderflow -n "__fish_orderflow_using_subcommand worker" -l color -d 'When to use colour; NO_COLOR turns it off under auto' -r -f -a "auto\t'Colour when writing to a terminal and `NO_COLOR` is not set'
always\t''
never\t''"
complete -c orderflow -n "__fish_orderflow_using_subcommand worker" -l log-format -d 'Log line format on stderr [default: json with -o json or jsonl, else text]' -r -f -a "text\t''
json\t''"
complete -c orderflow -n "__fish_orderflow_using_subcommand worker" -l accept-unencrypted -d 'With --encryption-key-file: still run orders that arrive unencrypted (from clients without the key file), for a switch-over window. Without it they fail INVALID_ORDER before any step'
complete -c orderflow -n "__fish_orderflow_using_subcommand worker" -l with-baseline -d 'Also host the no-op baseline workflow (for `orderflow bench`)'
complete -c orderflow -n "__fish_orderflow_using_subcommand worker" -l tls -d 'Connect to Temporal over TLS'
complete -c orderflow -n "__fish_orderflow_using_subcommand worker" -s v -l verbose -d 'More log detail on stderr (-v, -vv, -vvv); RUST_LOG overrides'
complete -c orderflow -n "__fish_orderflow_using_subcommand worker" -s q -l quiet -d 'Only errors on stderr: no progress, notes or warnings'
complete -c orderflow -n "__fish_orderflow_using_subcommand worker" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c orderflow -n "__fish_orderflow_using_subcommand worker" -s V -l version -d 'Print version'
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and not __fish_seen_subcommand_from create status watch cancel resubmit list help" -l address -d 'Temporal frontend address; TEMPORAL_HOST_PORT is read too [default: the profile\'s, else localhost:7233]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and not __fish_seen_subcommand_from create status watch cancel resubmit list help" -l namespace -d 'Temporal namespace [default: the profile\'s, else default]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and not __fish_seen_subcommand_from create status watch cancel resubmit list help" -l task-queue -d 'Task queue the worker polls and orders are sent to [default: orderflow]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and not __fish_seen_subcommand_from create status watch cancel resubmit list help" -l profile -d 'Profile to read from the Temporal CLI\'s config file' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and not __fish_seen_subcommand_from create status watch cancel resubmit list help" -l config-file -d 'The Temporal CLI\'s config file [default: its own, temporal.toml]' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and not __fish_seen_subcommand_from create status watch cancel resubmit list help" -l ui-url -d 'Web UI base for order links [default: the address\'s host, port 8233]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and not __fish_seen_subcommand_from create status watch cancel resubmit list help" -l connect-timeout -d 'How long to wait for Temporal or PostgreSQL to answer before giving up (exit 8)' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and not __fish_seen_subcommand_from create status watch cancel resubmit list help" -l encryption-key-file -d 'Encrypt every payload sent to Temporal with the keys in this file: one KEY_ID:BASE64_OF_32_BYTES per line, the first encrypts, all decrypt; it must be readable by its owner only' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and not __fish_seen_subcommand_from create status watch cancel resubmit list help" -l api-key -d 'API key for Temporal Cloud; turns TLS on. Never printed' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and not __fish_seen_subcommand_from create status watch cancel resubmit list help" -l tls-cert-path -d 'Client certificate for mTLS' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and not __fish_seen_subcommand_from create status watch cancel resubmit list help" -l tls-key-path -d 'Client private key for mTLS' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and not __fish_seen_subcommand_from create status watch cancel resubmit list help" -l tls-ca-path -d 'CA certificate to verify the server with' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and not __fish_seen_subcommand_from create status watch cancel resubmit list help" -l tls-server-name -d 'Server name to verify the certificate against' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and not __fish_seen_subcommand_from create status watch cancel resubmit list help" -l database-url -d 'PostgreSQL URL, postgres://USER:PASSWORD@HOST:PORT/DB; when unset, built from POSTGRES_HOST, POSTGRES_PORT, POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DB. Its password is never printed' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and not __fish_seen_subcommand_from create status watch cancel resubmit list help" -s o -l output -d 'Output format for data on stdout: text for people, json for scripts, jsonl (JSON Lines) for the changes `order watch` follows' -r -f -a "text\t'Tables and sentences for people'
json\t'Stable JSON on stdout (JSON Lines for `order watch` and `order create --watch`); errors as JSON on stderr'
jsonl\t'JSON Lines: one record per line for `order watch` and `order create` (with or without --watch); commands that print one document print it as with json'"
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and not __fish_seen_subcommand_from create status watch cancel resubmit list help" -l color -d 'When to use colour; NO_COLOR turns it off under auto' -r -f -a "auto\t'Colour when writing to a terminal and `NO_COLOR` is not set'
always\t''
never\t''"
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and not __fish_seen_subcommand_from create status watch cancel resubmit list help" -l log-format -d 'Log line format on stderr [default: json with -o json or jsonl, else text]' -r -f -a "text\t''
json\t''"
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and not __fish_seen_subcommand_from create status watch cancel resubmit list help" -l tls -d 'Connect to Temporal over TLS'
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and not __fish_seen_subcommand_from create status watch cancel resubmit list help" -s v -l verbose -d 'More log detail on stderr (-v, -vv, -vvv); RUST_LOG overrides'
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and not __fish_seen_subcommand_from create status watch cancel resubmit list help" -s q -l quiet -d 'Only errors on stderr: no progress, notes or warnings'
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and not __fish_seen_subcommand_from create status watch cancel resubmit list help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and not __fish_seen_subcommand_from create status watch cancel resubmit list help" -s V -l version -d 'Print version'
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and not __fish_seen_subcommand_from create status watch cancel resubmit list help" -f -a "create" -d 'Validate order files, then start one workflow per order'
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and not __fish_seen_subcommand_from create status watch cancel resubmit list help" -f -a "status" -d 'Show an order: status, step, attempts, failure, items and amounts'
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and not __fish_seen_subcommand_from create status watch cancel resubmit list help" -f -a "watch" -d 'Follow orders until each reaches COMPLETED, CANCELLED or FAILED'
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and not __fish_seen_subcommand_from create status watch cancel resubmit list help" -f -a "cancel" -d 'Cancel an order and wait for the outcome, or many (a selection)'
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and not __fish_seen_subcommand_from create status watch cancel resubmit list help" -f -a "resubmit" -d 'Start FAILED orders again as new orders (e.g. after a gateway outage)'
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and not __fish_seen_subcommand_from create status watch cancel resubmit list help" -f -a "list" -d 'List orders, newest first'
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and not __fish_seen_subcommand_from create status watch cancel resubmit list help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from create" -s f -l file -d 'Order file (JSON); repeat for several; \'-\' for stdin' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from create" -l id -d 'Order ID to use (one order only); overrides the file\'s "id"' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from create" -l timeout -d 'With --watch: give up after this long (exit 7), e.g. 30s, 5m' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from create" -l max-in-flight -d 'Keep at most N of the orders this command starts running at once: the next one starts when one has ended. For a large file, pick N as the orders/s you want times the latency you accept (DOCS.md § Capacity)' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from create" -l rate -d 'Start at most this many orders a second (e.g. 50 or 50/s)' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from create" -l address -d 'Temporal frontend address; TEMPORAL_HOST_PORT is read too [default: the profile\'s, else localhost:7233]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from create" -l namespace -d 'Temporal namespace [default: the profile\'s, else default]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from create" -l task-queue -d 'Task queue the worker polls and orders are sent to [default: orderflow]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from create" -l profile -d 'Profile to read from the Temporal CLI\'s config file' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from create" -l config-file -d 'The Temporal CLI\'s config file [default: its own, temporal.toml]' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from create" -l ui-url -d 'Web UI base for order links [default: the address\'s host, port 8233]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from create" -l connect-timeout -d 'How long to wait for Temporal or PostgreSQL to answer before giving up (exit 8)' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from create" -l encryption-key-file -d 'Encrypt every payload sent to Temporal with the keys in this file: one KEY_ID:BASE64_OF_32_BYTES per line, the first encrypts, all decrypt; it must be readable by its owner only' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from create" -l api-key -d 'API key for Temporal Cloud; turns TLS on. Never printed' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from create" -l tls-cert-path -d 'Client certificate for mTLS' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from create" -l tls-key-path -d 'Client private key for mTLS' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from create" -l tls-ca-path -d 'CA certificate to verify the server with' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from create" -l tls-server-name -d 'Server name to verify the certificate against' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from create" -l database-url -d 'PostgreSQL URL, postgres://USER:PASSWORD@HOST:PORT/DB; when unset, built from POSTGRES_HOST, POSTGRES_PORT, POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DB. Its password is never printed' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from create" -s o -l output -d 'Output format for data on stdout: text for people, json for scripts, jsonl (JSON Lines) for the changes `order watch` follows' -r -f -a "text\t'Tables and sentences for people'
json\t'Stable JSON on stdout (JSON Lines for `order watch` and `order create --watch`); errors as JSON on stderr'
jsonl\t'JSON Lines: one record per line for `order watch` and `order create` (with or without --watch); commands that print one document print it as with json'"
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from create" -l color -d 'When to use colour; NO_COLOR turns it off under auto' -r -f -a "auto\t'Colour when writing to a terminal and `NO_COLOR` is not set'
always\t''
never\t''"
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from create" -l log-format -d 'Log line format on stderr [default: json with -o json or jsonl, else text]' -r -f -a "text\t''
json\t''"
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from create" -s w -l watch -d 'Follow the orders after submitting; exit codes as for `order watch`'
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from create" -l dry-run -d 'Only validate and print what would be submitted'
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from create" -l tls -d 'Connect to Temporal over TLS'
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from create" -s v -l verbose -d 'More log detail on stderr (-v, -vv, -vvv); RUST_LOG overrides'
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from create" -s q -l quiet -d 'Only errors on stderr: no progress, notes or warnings'
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from create" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from create" -s V -l version -d 'Print version'
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from status" -l address -d 'Temporal frontend address; TEMPORAL_HOST_PORT is read too [default: the profile\'s, else localhost:7233]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from status" -l namespace -d 'Temporal namespace [default: the profile\'s, else default]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from status" -l task-queue -d 'Task queue the worker polls and orders are sent to [default: orderflow]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from status" -l profile -d 'Profile to read from the Temporal CLI\'s config file' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from status" -l config-file -d 'The Temporal CLI\'s config file [default: its own, temporal.toml]' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from status" -l ui-url -d 'Web UI base for order links [default: the address\'s host, port 8233]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from status" -l connect-timeout -d 'How long to wait for Temporal or PostgreSQL to answer before giving up (exit 8)' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from status" -l encryption-key-file -d 'Encrypt every payload sent to Temporal with the keys in this file: one KEY_ID:BASE64_OF_32_BYTES per line, the first encrypts, all decrypt; it must be readable by its owner only' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from status" -l api-key -d 'API key for Temporal Cloud; turns TLS on. Never printed' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from status" -l tls-cert-path -d 'Client certificate for mTLS' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from status" -l tls-key-path -d 'Client private key for mTLS' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from status" -l tls-ca-path -d 'CA certificate to verify the server with' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from status" -l tls-server-name -d 'Server name to verify the certificate against' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from status" -l database-url -d 'PostgreSQL URL, postgres://USER:PASSWORD@HOST:PORT/DB; when unset, built from POSTGRES_HOST, POSTGRES_PORT, POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DB. Its password is never printed' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from status" -s o -l output -d 'Output format for data on stdout: text for people, json for scripts, jsonl (JSON Lines) for the changes `order watch` follows' -r -f -a "text\t'Tables and sentences for people'
json\t'Stable JSON on stdout (JSON Lines for `order watch` and `order create --watch`); errors as JSON on stderr'
jsonl\t'JSON Lines: one record per line for `order watch` and `order create` (with or without --watch); commands that print one document print it as with json'"
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from status" -l color -d 'When to use colour; NO_COLOR turns it off under auto' -r -f -a "auto\t'Colour when writing to a terminal and `NO_COLOR` is not set'
always\t''
never\t''"
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from status" -l log-format -d 'Log line format on stderr [default: json with -o json or jsonl, else text]' -r -f -a "text\t''
json\t''"
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from status" -l timeline -d 'The order\'s life as one table: each step\'s start, duration, attempts and waits (for a worker, retry back-off, the database), the signals, the compensation, and what it did to money, stock and notices (from the database, when one is configured)'
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from status" -l tls -d 'Connect to Temporal over TLS'
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from status" -s v -l verbose -d 'More log detail on stderr (-v, -vv, -vvv); RUST_LOG overrides'
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from status" -s q -l quiet -d 'Only errors on stderr: no progress, notes or warnings'
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from status" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from status" -s V -l version -d 'Print version'
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from watch" -s f -l file -d 'Follow the orders of this order file (as `order create` read it; repeat for several)' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from watch" -l status -d 'Only orders in this status (any case); repeat or separate with commas for several; \'open\' is every status that has not ended' -r -f -a "PENDING\t''
CREATED\t''
INVENTORY_RESERVED\t''
PAID\t''
COMPLETED\t''
CANCELLED\t''
FAILED\t''
open\t''"
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from watch" -l customer -d 'Only this customer\'s orders' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from watch" -l timeout -d 'Give up after this long (exit 7), e.g. 30s, 5m' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from watch" -l address -d 'Temporal frontend address; TEMPORAL_HOST_PORT is read too [default: the profile\'s, else localhost:7233]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from watch" -l namespace -d 'Temporal namespace [default: the profile\'s, else default]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from watch" -l task-queue -d 'Task queue the worker polls and orders are sent to [default: orderflow]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from watch" -l profile -d 'Profile to read from the Temporal CLI\'s config file' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from watch" -l config-file -d 'The Temporal CLI\'s config file [default: its own, temporal.toml]' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from watch" -l ui-url -d 'Web UI base for order links [default: the address\'s host, port 8233]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from watch" -l connect-timeout -d 'How long to wait for Temporal or PostgreSQL to answer before giving up (exit 8)' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from watch" -l encryption-key-file -d 'Encrypt every payload sent to Temporal with the keys in this file: one KEY_ID:BASE64_OF_32_BYTES per line, the first encrypts, all decrypt; it must be readable by its owner only' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from watch" -l api-key -d 'API key for Temporal Cloud; turns TLS on. Never printed' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from watch" -l tls-cert-path -d 'Client certificate for mTLS' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from watch" -l tls-key-path -d 'Client private key for mTLS' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from watch" -l tls-ca-path -d 'CA certificate to verify the server with' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from watch" -l tls-server-name -d 'Server name to verify the certificate against' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from watch" -l database-url -d 'PostgreSQL URL, postgres://USER:PASSWORD@HOST:PORT/DB; when unset, built from POSTGRES_HOST, POSTGRES_PORT, POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DB. Its password is never printed' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from watch" -s o -l output -d 'Output format for data on stdout: text for people, json for scripts, jsonl (JSON Lines) for the changes `order watch` follows' -r -f -a "text\t'Tables and sentences for people'
json\t'Stable JSON on stdout (JSON Lines for `order watch` and `order create --watch`); errors as JSON on stderr'
jsonl\t'JSON Lines: one record per line for `order watch` and `order create` (with or without --watch); commands that print one document print it as with json'"
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from watch" -l color -d 'When to use colour; NO_COLOR turns it off under auto' -r -f -a "auto\t'Colour when writing to a terminal and `NO_COLOR` is not set'
always\t''
never\t''"
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from watch" -l log-format -d 'Log line format on stderr [default: json with -o json or jsonl, else text]' -r -f -a "text\t''
json\t''"
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from watch" -l tls -d 'Connect to Temporal over TLS'
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from watch" -s v -l verbose -d 'More log detail on stderr (-v, -vv, -vvv); RUST_LOG overrides'
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from watch" -s q -l quiet -d 'Only errors on stderr: no progress, notes or warnings'
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from watch" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from watch" -s V -l version -d 'Print version'
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from cancel" -l status -d 'Only orders in this status (any case); repeat or separate with commas for several; \'open\' is every status that has not ended' -r -f -a "PENDING\t''
CREATED\t''
INVENTORY_RESERVED\t''
PAID\t''
COMPLETED\t''
CANCELLED\t''
FAILED\t''
open\t''"
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from cancel" -l customer -d 'Only this customer\'s orders' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from cancel" -l failure-code -d 'Only orders that FAILED with this code (repeatable)' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from cancel" -l created-after -d 'Only orders created after this time: RFC 3339 (2026-12-04T10:00:00Z) or a duration ago (2h)' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from cancel" -l created-before -d 'Only orders created before this time: RFC 3339 or a duration ago' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from cancel" -l query -d 'The orders a visibility query finds instead (on OrderStatus, CustomerId, FailureCode, OrderTotal), e.g. \'OrderStatus="PAID"\'' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from cancel" -l ids-file -d 'The orders named in this file, one ID a line (\'#\' comments); \'-\' reads stdin' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from cancel" -l rate -d 'With a selection: at most this many orders a second (e.g. 20 or 20/s)' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from cancel" -l reason -d 'Why the order is cancelled: one line, at most 500 characters, recorded with the order and told to the customer' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from cancel" -l timeout -d 'Give up waiting after this long (exit 7)' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from cancel" -l address -d 'Temporal frontend address; TEMPORAL_HOST_PORT is read too [default: the profile\'s, else localhost:7233]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from cancel" -l namespace -d 'Temporal namespace [default: the profile\'s, else default]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from cancel" -l task-queue -d 'Task queue the worker polls and orders are sent to [default: orderflow]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from cancel" -l profile -d 'Profile to read from the Temporal CLI\'s config file' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from cancel" -l config-file -d 'The Temporal CLI\'s config file [default: its own, temporal.toml]' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from cancel" -l ui-url -d 'Web UI base for order links [default: the address\'s host, port 8233]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from cancel" -l connect-timeout -d 'How long to wait for Temporal or PostgreSQL to answer before giving up (exit 8)' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from cancel" -l encryption-key-file -d 'Encrypt every payload sent to Temporal with the keys in this file: one KEY_ID:BASE64_OF_32_BYTES per line, the first encrypts, all decrypt; it must be readable by its owner only' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from cancel" -l api-key -d 'API key for Temporal Cloud; turns TLS on. Never printed' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from cancel" -l tls-cert-path -d 'Client certificate for mTLS' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from cancel" -l tls-key-path -d 'Client private key for mTLS' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from cancel" -l tls-ca-path -d 'CA certificate to verify the server with' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from cancel" -l tls-server-name -d 'Server name to verify the certificate against' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from cancel" -l database-url -d 'PostgreSQL URL, postgres://USER:PASSWORD@HOST:PORT/DB; when unset, built from POSTGRES_HOST, POSTGRES_PORT, POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DB. Its password is never printed' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from cancel" -s o -l output -d 'Output format for data on stdout: text for people, json for scripts, jsonl (JSON Lines) for the changes `order watch` follows' -r -f -a "text\t'Tables and sentences for people'
json\t'Stable JSON on stdout (JSON Lines for `order watch` and `order create --watch`); errors as JSON on stderr'
jsonl\t'JSON Lines: one record per line for `order watch` and `order create` (with or without --watch); commands that print one document print it as with json'"
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from cancel" -l color -d 'When to use colour; NO_COLOR turns it off under auto' -r -f -a "auto\t'Colour when writing to a terminal and `NO_COLOR` is not set'
always\t''
never\t''"
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from cancel" -l log-format -d 'Log line format on stderr [default: json with -o json or jsonl, else text]' -r -f -a "text\t''
json\t''"
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from cancel" -l dry-run -d 'With a selection: list the orders it would cancel, and change nothing'
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from cancel" -l yes -d 'With a selection: do not ask; required when stdin is not a terminal'
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from cancel" -l no-wait -d 'Send the cancellation and return without waiting for the outcome'
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from cancel" -l tls -d 'Connect to Temporal over TLS'
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from cancel" -s v -l verbose -d 'More log detail on stderr (-v, -vv, -vvv); RUST_LOG overrides'
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from cancel" -s q -l quiet -d 'Only errors on stderr: no progress, notes or warnings'
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from cancel" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from cancel" -s V -l version -d 'Print version'
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from resubmit" -l status -d 'Only orders in this status (any case); repeat or separate with commas for several; \'open\' is every status that has not ended' -r -f -a "PENDING\t''
CREATED\t''
INVENTORY_RESERVED\t''
PAID\t''
COMPLETED\t''
CANCELLED\t''
FAILED\t''
open\t''"
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from resubmit" -l customer -d 'Only this customer\'s orders' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from resubmit" -l failure-code -d 'Only orders that FAILED with this code (repeatable)' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from resubmit" -l created-after -d 'Only orders created after this time: RFC 3339 (2026-12-04T10:00:00Z) or a duration ago (2h)' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from resubmit" -l created-before -d 'Only orders created before this time: RFC 3339 or a duration ago' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from resubmit" -l query -d 'The orders a visibility query finds instead (on OrderStatus, CustomerId, FailureCode, OrderTotal), e.g. \'OrderStatus="PAID"\'' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from resubmit" -l ids-file -d 'The orders named in this file, one ID a line (\'#\' comments); \'-\' reads stdin' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from resubmit" -l rate -d 'With a selection: at most this many orders a second (e.g. 20 or 20/s)' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from resubmit" -l address -d 'Temporal frontend address; TEMPORAL_HOST_PORT is read too [default: the profile\'s, else localhost:7233]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from resubmit" -l namespace -d 'Temporal namespace [default: the profile\'s, else default]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from resubmit" -l task-queue -d 'Task queue the worker polls and orders are sent to [default: orderflow]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from resubmit" -l profile -d 'Profile to read from the Temporal CLI\'s config file' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from resubmit" -l config-file -d 'The Temporal CLI\'s config file [default: its own, temporal.toml]' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from resubmit" -l ui-url -d 'Web UI base for order links [default: the address\'s host, port 8233]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from resubmit" -l connect-timeout -d 'How long to wait for Temporal or PostgreSQL to answer before giving up (exit 8)' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from resubmit" -l encryption-key-file -d 'Encrypt every payload sent to Temporal with the keys in this file: one KEY_ID:BASE64_OF_32_BYTES per line, the first encrypts, all decrypt; it must be readable by its owner only' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from resubmit" -l api-key -d 'API key for Temporal Cloud; turns TLS on. Never printed' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from resubmit" -l tls-cert-path -d 'Client certificate for mTLS' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from resubmit" -l tls-key-path -d 'Client private key for mTLS' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from resubmit" -l tls-ca-path -d 'CA certificate to verify the server with' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from resubmit" -l tls-server-name -d 'Server name to verify the certificate against' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from resubmit" -l database-url -d 'PostgreSQL URL, postgres://USER:PASSWORD@HOST:PORT/DB; when unset, built from POSTGRES_HOST, POSTGRES_PORT, POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DB. Its password is never printed' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from resubmit" -s o -l output -d 'Output format for data on stdout: text for people, json for scripts, jsonl (JSON Lines) for the changes `order watch` follows' -r -f -a "text\t'Tables and sentences for people'
json\t'Stable JSON on stdout (JSON Lines for `order watch` and `order create --watch`); errors as JSON on stderr'
jsonl\t'JSON Lines: one record per line for `order watch` and `order create` (with or without --watch); commands that print one document print it as with json'"
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from resubmit" -l color -d 'When to use colour; NO_COLOR turns it off under auto' -r -f -a "auto\t'Colour when writing to a terminal and `NO_COLOR` is not set'
always\t''
never\t''"
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from resubmit" -l log-format -d 'Log line format on stderr [default: json with -o json or jsonl, else text]' -r -f -a "text\t''
json\t''"
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from resubmit" -l dry-run -d 'With a selection: list the orders it would resubmit, and change nothing'
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from resubmit" -l yes -d 'With a selection: do not ask; required when stdin is not a terminal'
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from resubmit" -l tls -d 'Connect to Temporal over TLS'
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from resubmit" -s v -l verbose -d 'More log detail on stderr (-v, -vv, -vvv); RUST_LOG overrides'
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from resubmit" -s q -l quiet -d 'Only errors on stderr: no progress, notes or warnings'
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from resubmit" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from resubmit" -s V -l version -d 'Print version'
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from list" -l status -d 'Only orders in this status (any case); repeat or separate with commas for several; \'open\' is every status that has not ended' -r -f -a "PENDING\t''
CREATED\t''
INVENTORY_RESERVED\t''
PAID\t''
COMPLETED\t''
CANCELLED\t''
FAILED\t''
open\t''"
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from list" -l customer -d 'Only this customer\'s orders' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from list" -l limit -d 'At most this many orders' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from list" -l after -d 'The next page: only the orders listed after this one (the last order ID of the previous page), with the same filters' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from list" -l query -d 'List from Temporal\'s visibility instead of the database, with a visibility query on the orders\' search attributes (OrderStatus, CustomerId, FailureCode, OrderTotal), e.g. \'OrderStatus="FAILED"\'' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from list" -l address -d 'Temporal frontend address; TEMPORAL_HOST_PORT is read too [default: the profile\'s, else localhost:7233]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from list" -l namespace -d 'Temporal namespace [default: the profile\'s, else default]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from list" -l task-queue -d 'Task queue the worker polls and orders are sent to [default: orderflow]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from list" -l profile -d 'Profile to read from the Temporal CLI\'s config file' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from list" -l config-file -d 'The Temporal CLI\'s config file [default: its own, temporal.toml]' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from list" -l ui-url -d 'Web UI base for order links [default: the address\'s host, port 8233]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from list" -l connect-timeout -d 'How long to wait for Temporal or PostgreSQL to answer before giving up (exit 8)' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from list" -l encryption-key-file -d 'Encrypt every payload sent to Temporal with the keys in this file: one KEY_ID:BASE64_OF_32_BYTES per line, the first encrypts, all decrypt; it must be readable by its owner only' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from list" -l api-key -d 'API key for Temporal Cloud; turns TLS on. Never printed' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from list" -l tls-cert-path -d 'Client certificate for mTLS' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from list" -l tls-key-path -d 'Client private key for mTLS' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from list" -l tls-ca-path -d 'CA certificate to verify the server with' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from list" -l tls-server-name -d 'Server name to verify the certificate against' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from list" -l database-url -d 'PostgreSQL URL, postgres://USER:PASSWORD@HOST:PORT/DB; when unset, built from POSTGRES_HOST, POSTGRES_PORT, POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DB. Its password is never printed' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from list" -s o -l output -d 'Output format for data on stdout: text for people, json for scripts, jsonl (JSON Lines) for the changes `order watch` follows' -r -f -a "text\t'Tables and sentences for people'
json\t'Stable JSON on stdout (JSON Lines for `order watch` and `order create --watch`); errors as JSON on stderr'
jsonl\t'JSON Lines: one record per line for `order watch` and `order create` (with or without --watch); commands that print one document print it as with json'"
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from list" -l color -d 'When to use colour; NO_COLOR turns it off under auto' -r -f -a "auto\t'Colour when writing to a terminal and `NO_COLOR` is not set'
always\t''
never\t''"
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from list" -l log-format -d 'Log line format on stderr [default: json with -o json or jsonl, else text]' -r -f -a "text\t''
json\t''"
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from list" -l tls -d 'Connect to Temporal over TLS'
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from list" -s v -l verbose -d 'More log detail on stderr (-v, -vv, -vvv); RUST_LOG overrides'
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from list" -s q -l quiet -d 'Only errors on stderr: no progress, notes or warnings'
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from help" -f -a "create" -d 'Validate order files, then start one workflow per order'
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from help" -f -a "status" -d 'Show an order: status, step, attempts, failure, items and amounts'
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from help" -f -a "watch" -d 'Follow orders until each reaches COMPLETED, CANCELLED or FAILED'
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from help" -f -a "cancel" -d 'Cancel an order and wait for the outcome, or many (a selection)'
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from help" -f -a "resubmit" -d 'Start FAILED orders again as new orders (e.g. after a gateway outage)'
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from help" -f -a "list" -d 'List orders, newest first'
complete -c orderflow -n "__fish_orderflow_using_subcommand order; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c orderflow -n "__fish_orderflow_using_subcommand db; and not __fish_seen_subcommand_from migrate status reset help" -l address -d 'Temporal frontend address; TEMPORAL_HOST_PORT is read too [default: the profile\'s, else localhost:7233]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand db; and not __fish_seen_subcommand_from migrate status reset help" -l namespace -d 'Temporal namespace [default: the profile\'s, else default]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand db; and not __fish_seen_subcommand_from migrate status reset help" -l task-queue -d 'Task queue the worker polls and orders are sent to [default: orderflow]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand db; and not __fish_seen_subcommand_from migrate status reset help" -l profile -d 'Profile to read from the Temporal CLI\'s config file' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand db; and not __fish_seen_subcommand_from migrate status reset help" -l config-file -d 'The Temporal CLI\'s config file [default: its own, temporal.toml]' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand db; and not __fish_seen_subcommand_from migrate status reset help" -l ui-url -d 'Web UI base for order links [default: the address\'s host, port 8233]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand db; and not __fish_seen_subcommand_from migrate status reset help" -l connect-timeout -d 'How long to wait for Temporal or PostgreSQL to answer before giving up (exit 8)' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand db; and not __fish_seen_subcommand_from migrate status reset help" -l encryption-key-file -d 'Encrypt every payload sent to Temporal with the keys in this file: one KEY_ID:BASE64_OF_32_BYTES per line, the first encrypts, all decrypt; it must be readable by its owner only' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand db; and not __fish_seen_subcommand_from migrate status reset help" -l api-key -d 'API key for Temporal Cloud; turns TLS on. Never printed' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand db; and not __fish_seen_subcommand_from migrate status reset help" -l tls-cert-path -d 'Client certificate for mTLS' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand db; and not __fish_seen_subcommand_from migrate status reset help" -l tls-key-path -d 'Client private key for mTLS' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand db; and not __fish_seen_subcommand_from migrate status reset help" -l tls-ca-path -d 'CA certificate to verify the server with' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand db; and not __fish_seen_subcommand_from migrate status reset help" -l tls-server-name -d 'Server name to verify the certificate against' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand db; and not __fish_seen_subcommand_from migrate status reset help" -l database-url -d 'PostgreSQL URL, postgres://USER:PASSWORD@HOST:PORT/DB; when unset, built from POSTGRES_HOST, POSTGRES_PORT, POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DB. Its password is never printed' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand db; and not __fish_seen_subcommand_from migrate status reset help" -s o -l output -d 'Output format for data on stdout: text for people, json for scripts, jsonl (JSON Lines) for the changes `order watch` follows' -r -f -a "text\t'Tables and sentences for people'
json\t'Stable JSON on stdout (JSON Lines for `order watch` and `order create --watch`); errors as JSON on stderr'
jsonl\t'JSON Lines: one record per line for `order watch` and `order create` (with or without --watch); commands that print one document print it as with json'"
complete -c orderflow -n "__fish_orderflow_using_subcommand db; and not __fish_seen_subcommand_from migrate status reset help" -l color -d 'When to use colour; NO_COLOR turns it off under auto' -r -f -a "auto\t'Colour when writing to a terminal and `NO_COLOR` is not set'
always\t''
never\t''"
complete -c orderflow -n "__fish_orderflow_using_subcommand db; and not __fish_seen_subcommand_from migrate status reset help" -l log-format -d 'Log line format on stderr [default: json with -o json or jsonl, else text]' -r -f -a "text\t''
json\t''"
complete -c orderflow -n "__fish_orderflow_using_subcommand db; and not __fish_seen_subcommand_from migrate status reset help" -l tls -d 'Connect to Temporal over TLS'
complete -c orderflow -n "__fish_orderflow_using_subcommand db; and not __fish_seen_subcommand_from migrate status reset help" -s v -l verbose -d 'More log detail on stderr (-v, -vv, -vvv); RUST_LOG overrides'
complete -c orderflow -n "__fish_orderflow_using_subcommand db; and not __fish_seen_subcommand_from migrate status reset help" -s q -l quiet -d 'Only errors on stderr: no progress, notes or warnings'
complete -c orderflow -n "__fish_orderflow_using_subcommand db; and not __fish_seen_subcommand_from migrate status reset help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c orderflow -n "__fish_orderflow_using_subcommand db; and not __fish_seen_subcommand_from migrate status reset help" -s V -l version -d 'Print version'
complete -c orderflow -n "__fish_orderflow_using_subcommand db; and not __fish_seen_subcommand_from migrate status reset help" -f -a "migrate" -d 'Apply pending migrations (safe to repeat)'
complete -c orderflow -n "__fish_orderflow_using_subcommand db; and not __fish_seen_subcommand_from migrate status reset help" -f -a "status" -d 'List applied and pending migrations'
complete -c orderflow -n "__fish_orderflow_using_subcommand db; and not __fish_seen_subcommand_from migrate status reset help" -f -a "reset" -d 'Drop everything orderflow stored and re-apply the migrations'
complete -c orderflow -n "__fish_orderflow_using_subcommand db; and not __fish_seen_subcommand_from migrate status reset help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c orderflow -n "__fish_orderflow_using_subcommand db; and __fish_seen_subcommand_from migrate" -l address -d 'Temporal frontend address; TEMPORAL_HOST_PORT is read too [default: the profile\'s, else localhost:7233]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand db; and __fish_seen_subcommand_from migrate" -l namespace -d 'Temporal namespace [default: the profile\'s, else default]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand db; and __fish_seen_subcommand_from migrate" -l task-queue -d 'Task queue the worker polls and orders are sent to [default: orderflow]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand db; and __fish_seen_subcommand_from migrate" -l profile -d 'Profile to read from the Temporal CLI\'s config file' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand db; and __fish_seen_subcommand_from migrate" -l config-file -d 'The Temporal CLI\'s config file [default: its own, temporal.toml]' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand db; and __fish_seen_subcommand_from migrate" -l ui-url -d 'Web UI base for order links [default: the address\'s host, port 8233]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand db; and __fish_seen_subcommand_from migrate" -l connect-timeout -d 'How long to wait for Temporal or PostgreSQL to answer before giving up (exit 8)' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand db; and __fish_seen_subcommand_from migrate" -l encryption-key-file -d 'Encrypt every payload sent to Temporal with the keys in this file: one KEY_ID:BASE64_OF_32_BYTES per line, the first encrypts, all decrypt; it must be readable by its owner only' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand db; and __fish_seen_subcommand_from migrate" -l api-key -d 'API key for Temporal Cloud; turns TLS on. Never printed' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand db; and __fish_seen_subcommand_from migrate" -l tls-cert-path -d 'Client certificate for mTLS' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand db; and __fish_seen_subcommand_from migrate" -l tls-key-path -d 'Client private key for mTLS' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand db; and __fish_seen_subcommand_from migrate" -l tls-ca-path -d 'CA certificate to verify the server with' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand db; and __fish_seen_subcommand_from migrate" -l tls-server-name -d 'Server name to verify the certificate against' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand db; and __fish_seen_subcommand_from migrate" -l database-url -d 'PostgreSQL URL, postgres://USER:PASSWORD@HOST:PORT/DB; when unset, built from POSTGRES_HOST, POSTGRES_PORT, POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DB. Its password is never printed' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand db; and __fish_seen_subcommand_from migrate" -s o -l output -d 'Output format for data on stdout: text for people, json for scripts, jsonl (JSON Lines) for the changes `order watch` follows' -r -f -a "text\t'Tables and sentences for people'
json\t'Stable JSON on stdout (JSON Lines for `order watch` and `order create --watch`); errors as JSON on stderr'
jsonl\t'JSON Lines: one record per line for `order watch` and `order create` (with or without --watch); commands that print one document print it as with json'"
complete -c orderflow -n "__fish_orderflow_using_subcommand db; and __fish_seen_subcommand_from migrate" -l color -d 'When to use colour; NO_COLOR turns it off under auto' -r -f -a "auto\t'Colour when writing to a terminal and `NO_COLOR` is not set'
always\t''
never\t''"
complete -c orderflow -n "__fish_orderflow_using_subcommand db; and __fish_seen_subcommand_from migrate" -l log-format -d 'Log line format on stderr [default: json with -o json or jsonl, else text]' -r -f -a "text\t''
json\t''"
complete -c orderflow -n "__fish_orderflow_using_subcommand db; and __fish_seen_subcommand_from migrate" -l tls -d 'Connect to Temporal over TLS'
complete -c orderflow -n "__fish_orderflow_using_subcommand db; and __fish_seen_subcommand_from migrate" -s v -l verbose -d 'More log detail on stderr (-v, -vv, -vvv); RUST_LOG overrides'
complete -c orderflow -n "__fish_orderflow_using_subcommand db; and __fish_seen_subcommand_from migrate" -s q -l quiet -d 'Only errors on stderr: no progress, notes or warnings'
complete -c orderflow -n "__fish_orderflow_using_subcommand db; and __fish_seen_subcommand_from migrate" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c orderflow -n "__fish_orderflow_using_subcommand db; and __fish_seen_subcommand_from migrate" -s V -l version -d 'Print version'
complete -c orderflow -n "__fish_orderflow_using_subcommand db; and __fish_seen_subcommand_from status" -l address -d 'Temporal frontend address; TEMPORAL_HOST_PORT is read too [default: the profile\'s, else localhost:7233]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand db; and __fish_seen_subcommand_from status" -l namespace -d 'Temporal namespace [default: the profile\'s, else default]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand db; and __fish_seen_subcommand_from status" -l task-queue -d 'Task queue the worker polls and orders are sent to [default: orderflow]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand db; and __fish_seen_subcommand_from status" -l profile -d 'Profile to read from the Temporal CLI\'s config file' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand db; and __fish_seen_subcommand_from status" -l config-file -d 'The Temporal CLI\'s config file [default: its own, temporal.toml]' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand db; and __fish_seen_subcommand_from status" -l ui-url -d 'Web UI base for order links [default: the address\'s host, port 8233]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand db; and __fish_seen_subcommand_from status" -l connect-timeout -d 'How long to wait for Temporal or PostgreSQL to answer before giving up (exit 8)' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand db; and __fish_seen_subcommand_from status" -l encryption-key-file -d 'Encrypt every payload sent to Temporal with the keys in this file: one KEY_ID:BASE64_OF_32_BYTES per line, the first encrypts, all decrypt; it must be readable by its owner only' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand db; and __fish_seen_subcommand_from status" -l api-key -d 'API key for Temporal Cloud; turns TLS on. Never printed' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand db; and __fish_seen_subcommand_from status" -l tls-cert-path -d 'Client certificate for mTLS' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand db; and __fish_seen_subcommand_from status" -l tls-key-path -d 'Client private key for mTLS' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand db; and __fish_seen_subcommand_from status" -l tls-ca-path -d 'CA certificate to verify the server with' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand db; and __fish_seen_subcommand_from status" -l tls-server-name -d 'Server name to verify the certificate against' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand db; and __fish_seen_subcommand_from status" -l database-url -d 'PostgreSQL URL, postgres://USER:PASSWORD@HOST:PORT/DB; when unset, built from POSTGRES_HOST, POSTGRES_PORT, POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DB. Its password is never printed' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand db; and __fish_seen_subcommand_from status" -s o -l output -d 'Output format for data on stdout: text for people, json for scripts, jsonl (JSON Lines) for the changes `order watch` follows' -r -f -a "text\t'Tables and sentences for people'
json\t'Stable JSON on stdout (JSON Lines for `order watch` and `order create --watch`); errors as JSON on stderr'
jsonl\t'JSON Lines: one record per line for `order watch` and `order create` (with or without --watch); commands that print one document print it as with json'"
complete -c orderflow -n "__fish_orderflow_using_subcommand db; and __fish_seen_subcommand_from status" -l color -d 'When to use colour; NO_COLOR turns it off under auto' -r -f -a "auto\t'Colour when writing to a terminal and `NO_COLOR` is not set'
always\t''
never\t''"
complete -c orderflow -n "__fish_orderflow_using_subcommand db; and __fish_seen_subcommand_from status" -l log-format -d 'Log line format on stderr [default: json with -o json or jsonl, else text]' -r -f -a "text\t''
json\t''"
complete -c orderflow -n "__fish_orderflow_using_subcommand db; and __fish_seen_subcommand_from status" -l tls -d 'Connect to Temporal over TLS'
complete -c orderflow -n "__fish_orderflow_using_subcommand db; and __fish_seen_subcommand_from status" -s v -l verbose -d 'More log detail on stderr (-v, -vv, -vvv); RUST_LOG overrides'
complete -c orderflow -n "__fish_orderflow_using_subcommand db; and __fish_seen_subcommand_from status" -s q -l quiet -d 'Only errors on stderr: no progress, notes or warnings'
complete -c orderflow -n "__fish_orderflow_using_subcommand db; and __fish_seen_subcommand_from status" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c orderflow -n "__fish_orderflow_using_subcommand db; and __fish_seen_subcommand_from status" -s V -l version -d 'Print version'
complete -c orderflow -n "__fish_orderflow_using_subcommand db; and __fish_seen_subcommand_from reset" -l address -d 'Temporal frontend address; TEMPORAL_HOST_PORT is read too [default: the profile\'s, else localhost:7233]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand db; and __fish_seen_subcommand_from reset" -l namespace -d 'Temporal namespace [default: the profile\'s, else default]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand db; and __fish_seen_subcommand_from reset" -l task-queue -d 'Task queue the worker polls and orders are sent to [default: orderflow]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand db; and __fish_seen_subcommand_from reset" -l profile -d 'Profile to read from the Temporal CLI\'s config file' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand db; and __fish_seen_subcommand_from reset" -l config-file -d 'The Temporal CLI\'s config file [default: its own, temporal.toml]' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand db; and __fish_seen_subcommand_from reset" -l ui-url -d 'Web UI base for order links [default: the address\'s host, port 8233]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand db; and __fish_seen_subcommand_from reset" -l connect-timeout -d 'How long to wait for Temporal or PostgreSQL to answer before giving up (exit 8)' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand db; and __fish_seen_subcommand_from reset" -l encryption-key-file -d 'Encrypt every payload sent to Temporal with the keys in this file: one KEY_ID:BASE64_OF_32_BYTES per line, the first encrypts, all decrypt; it must be readable by its owner only' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand db; and __fish_seen_subcommand_from reset" -l api-key -d 'API key for Temporal Cloud; turns TLS on. Never printed' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand db; and __fish_seen_subcommand_from reset" -l tls-cert-path -d 'Client certificate for mTLS' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand db; and __fish_seen_subcommand_from reset" -l tls-key-path -d 'Client private key for mTLS' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand db; and __fish_seen_subcommand_from reset" -l tls-ca-path -d 'CA certificate to verify the server with' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand db; and __fish_seen_subcommand_from reset" -l tls-server-name -d 'Server name to verify the certificate against' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand db; and __fish_seen_subcommand_from reset" -l database-url -d 'PostgreSQL URL, postgres://USER:PASSWORD@HOST:PORT/DB; when unset, built from POSTGRES_HOST, POSTGRES_PORT, POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DB. Its password is never printed' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand db; and __fish_seen_subcommand_from reset" -s o -l output -d 'Output format for data on stdout: text for people, json for scripts, jsonl (JSON Lines) for the changes `order watch` follows' -r -f -a "text\t'Tables and sentences for people'
json\t'Stable JSON on stdout (JSON Lines for `order watch` and `order create --watch`); errors as JSON on stderr'
jsonl\t'JSON Lines: one record per line for `order watch` and `order create` (with or without --watch); commands that print one document print it as with json'"
complete -c orderflow -n "__fish_orderflow_using_subcommand db; and __fish_seen_subcommand_from reset" -l color -d 'When to use colour; NO_COLOR turns it off under auto' -r -f -a "auto\t'Colour when writing to a terminal and `NO_COLOR` is not set'
always\t''
never\t''"
complete -c orderflow -n "__fish_orderflow_using_subcommand db; and __fish_seen_subcommand_from reset" -l log-format -d 'Log line format on stderr [default: json with -o json or jsonl, else text]' -r -f -a "text\t''
json\t''"
complete -c orderflow -n "__fish_orderflow_using_subcommand db; and __fish_seen_subcommand_from reset" -l yes -d 'Do not ask; required when stdin is not a terminal'
complete -c orderflow -n "__fish_orderflow_using_subcommand db; and __fish_seen_subcommand_from reset" -l tls -d 'Connect to Temporal over TLS'
complete -c orderflow -n "__fish_orderflow_using_subcommand db; and __fish_seen_subcommand_from reset" -s v -l verbose -d 'More log detail on stderr (-v, -vv, -vvv); RUST_LOG overrides'
complete -c orderflow -n "__fish_orderflow_using_subcommand db; and __fish_seen_subcommand_from reset" -s q -l quiet -d 'Only errors on stderr: no progress, notes or warnings'
complete -c orderflow -n "__fish_orderflow_using_subcommand db; and __fish_seen_subcommand_from reset" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c orderflow -n "__fish_orderflow_using_subcommand db; and __fish_seen_subcommand_from reset" -s V -l version -d 'Print version'
complete -c orderflow -n "__fish_orderflow_using_subcommand db; and __fish_seen_subcommand_from help" -f -a "migrate" -d 'Apply pending migrations (safe to repeat)'
complete -c orderflow -n "__fish_orderflow_using_subcommand db; and __fish_seen_subcommand_from help" -f -a "status" -d 'List applied and pending migrations'
complete -c orderflow -n "__fish_orderflow_using_subcommand db; and __fish_seen_subcommand_from help" -f -a "reset" -d 'Drop everything orderflow stored and re-apply the migrations'
complete -c orderflow -n "__fish_orderflow_using_subcommand db; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c orderflow -n "__fish_orderflow_using_subcommand product; and not __fish_seen_subcommand_from import list help" -l address -d 'Temporal frontend address; TEMPORAL_HOST_PORT is read too [default: the profile\'s, else localhost:7233]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand product; and not __fish_seen_subcommand_from import list help" -l namespace -d 'Temporal namespace [default: the profile\'s, else default]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand product; and not __fish_seen_subcommand_from import list help" -l task-queue -d 'Task queue the worker polls and orders are sent to [default: orderflow]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand product; and not __fish_seen_subcommand_from import list help" -l profile -d 'Profile to read from the Temporal CLI\'s config file' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand product; and not __fish_seen_subcommand_from import list help" -l config-file -d 'The Temporal CLI\'s config file [default: its own, temporal.toml]' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand product; and not __fish_seen_subcommand_from import list help" -l ui-url -d 'Web UI base for order links [default: the address\'s host, port 8233]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand product; and not __fish_seen_subcommand_from import list help" -l connect-timeout -d 'How long to wait for Temporal or PostgreSQL to answer before giving up (exit 8)' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand product; and not __fish_seen_subcommand_from import list help" -l encryption-key-file -d 'Encrypt every payload sent to Temporal with the keys in this file: one KEY_ID:BASE64_OF_32_BYTES per line, the first encrypts, all decrypt; it must be readable by its owner only' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand product; and not __fish_seen_subcommand_from import list help" -l api-key -d 'API key for Temporal Cloud; turns TLS on. Never printed' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand product; and not __fish_seen_subcommand_from import list help" -l tls-cert-path -d 'Client certificate for mTLS' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand product; and not __fish_seen_subcommand_from import list help" -l tls-key-path -d 'Client private key for mTLS' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand product; and not __fish_seen_subcommand_from import list help" -l tls-ca-path -d 'CA certificate to verify the server with' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand product; and not __fish_seen_subcommand_from import list help" -l tls-server-name -d 'Server name to verify the certificate against' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand product; and not __fish_seen_subcommand_from import list help" -l database-url -d 'PostgreSQL URL, postgres://USER:PASSWORD@HOST:PORT/DB; when unset, built from POSTGRES_HOST, POSTGRES_PORT, POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DB. Its password is never printed' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand product; and not __fish_seen_subcommand_from import list help" -s o -l output -d 'Output format for data on stdout: text for people, json for scripts, jsonl (JSON Lines) for the changes `order watch` follows' -r -f -a "text\t'Tables and sentences for people'
json\t'Stable JSON on stdout (JSON Lines for `order watch` and `order create --watch`); errors as JSON on stderr'
jsonl\t'JSON Lines: one record per line for `order watch` and `order create` (with or without --watch); commands that print one document print it as with json'"
complete -c orderflow -n "__fish_orderflow_using_subcommand product; and not __fish_seen_subcommand_from import list help" -l color -d 'When to use colour; NO_COLOR turns it off under auto' -r -f -a "auto\t'Colour when writing to a terminal and `NO_COLOR` is not set'
always\t''
never\t''"
complete -c orderflow -n "__fish_orderflow_using_subcommand product; and not __fish_seen_subcommand_from import list help" -l log-format -d 'Log line format on stderr [default: json with -o json or jsonl, else text]' -r -f -a "text\t''
json\t''"
complete -c orderflow -n "__fish_orderflow_using_subcommand product; and not __fish_seen_subcommand_from import list help" -l tls -d 'Connect to Temporal over TLS'
complete -c orderflow -n "__fish_orderflow_using_subcommand product; and not __fish_seen_subcommand_from import list help" -s v -l verbose -d 'More log detail on stderr (-v, -vv, -vvv); RUST_LOG overrides'
complete -c orderflow -n "__fish_orderflow_using_subcommand product; and not __fish_seen_subcommand_from import list help" -s q -l quiet -d 'Only errors on stderr: no progress, notes or warnings'
complete -c orderflow -n "__fish_orderflow_using_subcommand product; and not __fish_seen_subcommand_from import list help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c orderflow -n "__fish_orderflow_using_subcommand product; and not __fish_seen_subcommand_from import list help" -s V -l version -d 'Print version'
complete -c orderflow -n "__fish_orderflow_using_subcommand product; and not __fish_seen_subcommand_from import list help" -f -a "import" -d 'Insert or update products from a JSON file'
complete -c orderflow -n "__fish_orderflow_using_subcommand product; and not __fish_seen_subcommand_from import list help" -f -a "list" -d 'Show the catalog with prices and stock'
complete -c orderflow -n "__fish_orderflow_using_subcommand product; and not __fish_seen_subcommand_from import list help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c orderflow -n "__fish_orderflow_using_subcommand product; and __fish_seen_subcommand_from import" -s f -l file -d 'Catalog file (JSON); \'-\' for stdin' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand product; and __fish_seen_subcommand_from import" -l address -d 'Temporal frontend address; TEMPORAL_HOST_PORT is read too [default: the profile\'s, else localhost:7233]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand product; and __fish_seen_subcommand_from import" -l namespace -d 'Temporal namespace [default: the profile\'s, else default]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand product; and __fish_seen_subcommand_from import" -l task-queue -d 'Task queue the worker polls and orders are sent to [default: orderflow]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand product; and __fish_seen_subcommand_from import" -l profile -d 'Profile to read from the Temporal CLI\'s config file' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand product; and __fish_seen_subcommand_from import" -l config-file -d 'The Temporal CLI\'s config file [default: its own, temporal.toml]' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand product; and __fish_seen_subcommand_from import" -l ui-url -d 'Web UI base for order links [default: the address\'s host, port 8233]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand product; and __fish_seen_subcommand_from import" -l connect-timeout -d 'How long to wait for Temporal or PostgreSQL to answer before giving up (exit 8)' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand product; and __fish_seen_subcommand_from import" -l encryption-key-file -d 'Encrypt every payload sent to Temporal with the keys in this file: one KEY_ID:BASE64_OF_32_BYTES per line, the first encrypts, all decrypt; it must be readable by its owner only' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand product; and __fish_seen_subcommand_from import" -l api-key -d 'API key for Temporal Cloud; turns TLS on. Never printed' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand product; and __fish_seen_subcommand_from import" -l tls-cert-path -d 'Client certificate for mTLS' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand product; and __fish_seen_subcommand_from import" -l tls-key-path -d 'Client private key for mTLS' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand product; and __fish_seen_subcommand_from import" -l tls-ca-path -d 'CA certificate to verify the server with' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand product; and __fish_seen_subcommand_from import" -l tls-server-name -d 'Server name to verify the certificate against' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand product; and __fish_seen_subcommand_from import" -l database-url -d 'PostgreSQL URL, postgres://USER:PASSWORD@HOST:PORT/DB; when unset, built from POSTGRES_HOST, POSTGRES_PORT, POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DB. Its password is never printed' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand product; and __fish_seen_subcommand_from import" -s o -l output -d 'Output format for data on stdout: text for people, json for scripts, jsonl (JSON Lines) for the changes `order watch` follows' -r -f -a "text\t'Tables and sentences for people'
json\t'Stable JSON on stdout (JSON Lines for `order watch` and `order create --watch`); errors as JSON on stderr'
jsonl\t'JSON Lines: one record per line for `order watch` and `order create` (with or without --watch); commands that print one document print it as with json'"
complete -c orderflow -n "__fish_orderflow_using_subcommand product; and __fish_seen_subcommand_from import" -l color -d 'When to use colour; NO_COLOR turns it off under auto' -r -f -a "auto\t'Colour when writing to a terminal and `NO_COLOR` is not set'
always\t''
never\t''"
complete -c orderflow -n "__fish_orderflow_using_subcommand product; and __fish_seen_subcommand_from import" -l log-format -d 'Log line format on stderr [default: json with -o json or jsonl, else text]' -r -f -a "text\t''
json\t''"
complete -c orderflow -n "__fish_orderflow_using_subcommand product; and __fish_seen_subcommand_from import" -l tls -d 'Connect to Temporal over TLS'
complete -c orderflow -n "__fish_orderflow_using_subcommand product; and __fish_seen_subcommand_from import" -s v -l verbose -d 'More log detail on stderr (-v, -vv, -vvv); RUST_LOG overrides'
complete -c orderflow -n "__fish_orderflow_using_subcommand product; and __fish_seen_subcommand_from import" -s q -l quiet -d 'Only errors on stderr: no progress, notes or warnings'
complete -c orderflow -n "__fish_orderflow_using_subcommand product; and __fish_seen_subcommand_from import" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c orderflow -n "__fish_orderflow_using_subcommand product; and __fish_seen_subcommand_from import" -s V -l version -d 'Print version'
complete -c orderflow -n "__fish_orderflow_using_subcommand product; and __fish_seen_subcommand_from list" -l address -d 'Temporal frontend address; TEMPORAL_HOST_PORT is read too [default: the profile\'s, else localhost:7233]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand product; and __fish_seen_subcommand_from list" -l namespace -d 'Temporal namespace [default: the profile\'s, else default]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand product; and __fish_seen_subcommand_from list" -l task-queue -d 'Task queue the worker polls and orders are sent to [default: orderflow]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand product; and __fish_seen_subcommand_from list" -l profile -d 'Profile to read from the Temporal CLI\'s config file' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand product; and __fish_seen_subcommand_from list" -l config-file -d 'The Temporal CLI\'s config file [default: its own, temporal.toml]' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand product; and __fish_seen_subcommand_from list" -l ui-url -d 'Web UI base for order links [default: the address\'s host, port 8233]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand product; and __fish_seen_subcommand_from list" -l connect-timeout -d 'How long to wait for Temporal or PostgreSQL to answer before giving up (exit 8)' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand product; and __fish_seen_subcommand_from list" -l encryption-key-file -d 'Encrypt every payload sent to Temporal with the keys in this file: one KEY_ID:BASE64_OF_32_BYTES per line, the first encrypts, all decrypt; it must be readable by its owner only' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand product; and __fish_seen_subcommand_from list" -l api-key -d 'API key for Temporal Cloud; turns TLS on. Never printed' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand product; and __fish_seen_subcommand_from list" -l tls-cert-path -d 'Client certificate for mTLS' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand product; and __fish_seen_subcommand_from list" -l tls-key-path -d 'Client private key for mTLS' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand product; and __fish_seen_subcommand_from list" -l tls-ca-path -d 'CA certificate to verify the server with' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand product; and __fish_seen_subcommand_from list" -l tls-server-name -d 'Server name to verify the certificate against' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand product; and __fish_seen_subcommand_from list" -l database-url -d 'PostgreSQL URL, postgres://USER:PASSWORD@HOST:PORT/DB; when unset, built from POSTGRES_HOST, POSTGRES_PORT, POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DB. Its password is never printed' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand product; and __fish_seen_subcommand_from list" -s o -l output -d 'Output format for data on stdout: text for people, json for scripts, jsonl (JSON Lines) for the changes `order watch` follows' -r -f -a "text\t'Tables and sentences for people'
json\t'Stable JSON on stdout (JSON Lines for `order watch` and `order create --watch`); errors as JSON on stderr'
jsonl\t'JSON Lines: one record per line for `order watch` and `order create` (with or without --watch); commands that print one document print it as with json'"
complete -c orderflow -n "__fish_orderflow_using_subcommand product; and __fish_seen_subcommand_from list" -l color -d 'When to use colour; NO_COLOR turns it off under auto' -r -f -a "auto\t'Colour when writing to a terminal and `NO_COLOR` is not set'
always\t''
never\t''"
complete -c orderflow -n "__fish_orderflow_using_subcommand product; and __fish_seen_subcommand_from list" -l log-format -d 'Log line format on stderr [default: json with -o json or jsonl, else text]' -r -f -a "text\t''
json\t''"
complete -c orderflow -n "__fish_orderflow_using_subcommand product; and __fish_seen_subcommand_from list" -l tls -d 'Connect to Temporal over TLS'
complete -c orderflow -n "__fish_orderflow_using_subcommand product; and __fish_seen_subcommand_from list" -s v -l verbose -d 'More log detail on stderr (-v, -vv, -vvv); RUST_LOG overrides'
complete -c orderflow -n "__fish_orderflow_using_subcommand product; and __fish_seen_subcommand_from list" -s q -l quiet -d 'Only errors on stderr: no progress, notes or warnings'
complete -c orderflow -n "__fish_orderflow_using_subcommand product; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c orderflow -n "__fish_orderflow_using_subcommand product; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c orderflow -n "__fish_orderflow_using_subcommand product; and __fish_seen_subcommand_from help" -f -a "import" -d 'Insert or update products from a JSON file'
complete -c orderflow -n "__fish_orderflow_using_subcommand product; and __fish_seen_subcommand_from help" -f -a "list" -d 'Show the catalog with prices and stock'
complete -c orderflow -n "__fish_orderflow_using_subcommand product; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c orderflow -n "__fish_orderflow_using_subcommand dev; and not __fish_seen_subcommand_from env help" -l data-dir -d 'Where the stack keeps its state, Temporal\'s and PostgreSQL\'s together [default: ~/.local/share/orderflow]' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand dev; and not __fish_seen_subcommand_from env help" -l port -d 'Start a Temporal dev server on this port (127.0.0.1), rather than use the one that answers at --address or localhost:7233' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand dev; and not __fish_seen_subcommand_from env help" -l ui-port -d 'The Web UI\'s port of the server it starts [default: 8233 when free]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand dev; and not __fish_seen_subcommand_from env help" -l listen -d 'Serve the order API and page (`orderflow serve`) here [default: 127.0.0.1:8080, or a free loopback port when it is taken]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand dev; and not __fish_seen_subcommand_from env help" -l address -d 'Temporal frontend address; TEMPORAL_HOST_PORT is read too [default: the profile\'s, else localhost:7233]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand dev; and not __fish_seen_subcommand_from env help" -l namespace -d 'Temporal namespace [default: the profile\'s, else default]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand dev; and not __fish_seen_subcommand_from env help" -l task-queue -d 'Task queue the worker polls and orders are sent to [default: orderflow]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand dev; and not __fish_seen_subcommand_from env help" -l profile -d 'Profile to read from the Temporal CLI\'s config file' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand dev; and not __fish_seen_subcommand_from env help" -l config-file -d 'The Temporal CLI\'s config file [default: its own, temporal.toml]' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand dev; and not __fish_seen_subcommand_from env help" -l ui-url -d 'Web UI base for order links [default: the address\'s host, port 8233]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand dev; and not __fish_seen_subcommand_from env help" -l connect-timeout -d 'How long to wait for Temporal or PostgreSQL to answer before giving up (exit 8)' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand dev; and not __fish_seen_subcommand_from env help" -l encryption-key-file -d 'Encrypt every payload sent to Temporal with the keys in this file: one KEY_ID:BASE64_OF_32_BYTES per line, the first encrypts, all decrypt; it must be readable by its owner only' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand dev; and not __fish_seen_subcommand_from env help" -l api-key -d 'API key for Temporal Cloud; turns TLS on. Never printed' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand dev; and not __fish_seen_subcommand_from env help" -l tls-cert-path -d 'Client certificate for mTLS' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand dev; and not __fish_seen_subcommand_from env help" -l tls-key-path -d 'Client private key for mTLS' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand dev; and not __fish_seen_subcommand_from env help" -l tls-ca-path -d 'CA certificate to verify the server with' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand dev; and not __fish_seen_subcommand_from env help" -l tls-server-name -d 'Server name to verify the certificate against' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand dev; and not __fish_seen_subcommand_from env help" -l database-url -d 'PostgreSQL URL, postgres://USER:PASSWORD@HOST:PORT/DB; when unset, built from POSTGRES_HOST, POSTGRES_PORT, POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DB. Its password is never printed' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand dev; and not __fish_seen_subcommand_from env help" -s o -l output -d 'Output format for data on stdout: text for people, json for scripts, jsonl (JSON Lines) for the changes `order watch` follows' -r -f -a "text\t'Tables and sentences for people'
json\t'Stable JSON on stdout (JSON Lines for `order watch` and `order create --watch`); errors as JSON on stderr'
jsonl\t'JSON Lines: one record per line for `order watch` and `order create` (with or without --watch); commands that print one document print it as with json'"
complete -c orderflow -n "__fish_orderflow_using_subcommand dev; and not __fish_seen_subcommand_from env help" -l color -d 'When to use colour; NO_COLOR turns it off under auto' -r -f -a "auto\t'Colour when writing to a terminal and `NO_COLOR` is not set'
always\t''
never\t''"
complete -c orderflow -n "__fish_orderflow_using_subcommand dev; and not __fish_seen_subcommand_from env help" -l log-format -d 'Log line format on stderr [default: json with -o json or jsonl, else text]' -r -f -a "text\t''
json\t''"
complete -c orderflow -n "__fish_orderflow_using_subcommand dev; and not __fish_seen_subcommand_from env help" -l fresh -d 'Delete the kept state (orders in Temporal and in PostgreSQL) first'
complete -c orderflow -n "__fish_orderflow_using_subcommand dev; and not __fish_seen_subcommand_from env help" -l encrypt -d 'Encrypt every payload: with --encryption-key-file\'s keys, else a key generated into the data directory (mode 0600); the Web UI decodes through a codec server this command runs on 127.0.0.1'
complete -c orderflow -n "__fish_orderflow_using_subcommand dev; and not __fish_seen_subcommand_from env help" -l tls -d 'Connect to Temporal over TLS'
complete -c orderflow -n "__fish_orderflow_using_subcommand dev; and not __fish_seen_subcommand_from env help" -s v -l verbose -d 'More log detail on stderr (-v, -vv, -vvv); RUST_LOG overrides'
complete -c orderflow -n "__fish_orderflow_using_subcommand dev; and not __fish_seen_subcommand_from env help" -s q -l quiet -d 'Only errors on stderr: no progress, notes or warnings'
complete -c orderflow -n "__fish_orderflow_using_subcommand dev; and not __fish_seen_subcommand_from env help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c orderflow -n "__fish_orderflow_using_subcommand dev; and not __fish_seen_subcommand_from env help" -s V -l version -d 'Print version'
complete -c orderflow -n "__fish_orderflow_using_subcommand dev; and not __fish_seen_subcommand_from env help" -f -a "env" -d 'Print the running stack\'s `export` lines again (`-o json`: its settings)'
complete -c orderflow -n "__fish_orderflow_using_subcommand dev; and not __fish_seen_subcommand_from env help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c orderflow -n "__fish_orderflow_using_subcommand dev; and __fish_seen_subcommand_from env" -l data-dir -d 'The data directory of the stack [default: ~/.local/share/orderflow]' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand dev; and __fish_seen_subcommand_from env" -l address -d 'Temporal frontend address; TEMPORAL_HOST_PORT is read too [default: the profile\'s, else localhost:7233]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand dev; and __fish_seen_subcommand_from env" -l namespace -d 'Temporal namespace [default: the profile\'s, else default]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand dev; and __fish_seen_subcommand_from env" -l task-queue -d 'Task queue the worker polls and orders are sent to [default: orderflow]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand dev; and __fish_seen_subcommand_from env" -l profile -d 'Profile to read from the Temporal CLI\'s config file' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand dev; and __fish_seen_subcommand_from env" -l config-file -d 'The Temporal CLI\'s config file [default: its own, temporal.toml]' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand dev; and __fish_seen_subcommand_from env" -l ui-url -d 'Web UI base for order links [default: the address\'s host, port 8233]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand dev; and __fish_seen_subcommand_from env" -l connect-timeout -d 'How long to wait for Temporal or PostgreSQL to answer before giving up (exit 8)' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand dev; and __fish_seen_subcommand_from env" -l encryption-key-file -d 'Encrypt every payload sent to Temporal with the keys in this file: one KEY_ID:BASE64_OF_32_BYTES per line, the first encrypts, all decrypt; it must be readable by its owner only' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand dev; and __fish_seen_subcommand_from env" -l api-key -d 'API key for Temporal Cloud; turns TLS on. Never printed' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand dev; and __fish_seen_subcommand_from env" -l tls-cert-path -d 'Client certificate for mTLS' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand dev; and __fish_seen_subcommand_from env" -l tls-key-path -d 'Client private key for mTLS' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand dev; and __fish_seen_subcommand_from env" -l tls-ca-path -d 'CA certificate to verify the server with' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand dev; and __fish_seen_subcommand_from env" -l tls-server-name -d 'Server name to verify the certificate against' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand dev; and __fish_seen_subcommand_from env" -l database-url -d 'PostgreSQL URL, postgres://USER:PASSWORD@HOST:PORT/DB; when unset, built from POSTGRES_HOST, POSTGRES_PORT, POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DB. Its password is never printed' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand dev; and __fish_seen_subcommand_from env" -s o -l output -d 'Output format for data on stdout: text for people, json for scripts, jsonl (JSON Lines) for the changes `order watch` follows' -r -f -a "text\t'Tables and sentences for people'
json\t'Stable JSON on stdout (JSON Lines for `order watch` and `order create --watch`); errors as JSON on stderr'
jsonl\t'JSON Lines: one record per line for `order watch` and `order create` (with or without --watch); commands that print one document print it as with json'"
complete -c orderflow -n "__fish_orderflow_using_subcommand dev; and __fish_seen_subcommand_from env" -l color -d 'When to use colour; NO_COLOR turns it off under auto' -r -f -a "auto\t'Colour when writing to a terminal and `NO_COLOR` is not set'
always\t''
never\t''"
complete -c orderflow -n "__fish_orderflow_using_subcommand dev; and __fish_seen_subcommand_from env" -l log-format -d 'Log line format on stderr [default: json with -o json or jsonl, else text]' -r -f -a "text\t''
json\t''"
complete -c orderflow -n "__fish_orderflow_using_subcommand dev; and __fish_seen_subcommand_from env" -l tls -d 'Connect to Temporal over TLS'
complete -c orderflow -n "__fish_orderflow_using_subcommand dev; and __fish_seen_subcommand_from env" -s v -l verbose -d 'More log detail on stderr (-v, -vv, -vvv); RUST_LOG overrides'
complete -c orderflow -n "__fish_orderflow_using_subcommand dev; and __fish_seen_subcommand_from env" -s q -l quiet -d 'Only errors on stderr: no progress, notes or warnings'
complete -c orderflow -n "__fish_orderflow_using_subcommand dev; and __fish_seen_subcommand_from env" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c orderflow -n "__fish_orderflow_using_subcommand dev; and __fish_seen_subcommand_from env" -s V -l version -d 'Print version'
complete -c orderflow -n "__fish_orderflow_using_subcommand dev; and __fish_seen_subcommand_from help" -f -a "env" -d 'Print the running stack\'s `export` lines again (`-o json`: its settings)'
complete -c orderflow -n "__fish_orderflow_using_subcommand dev; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c orderflow -n "__fish_orderflow_using_subcommand demo" -l listen -d 'Serve the order API and page (`orderflow serve`) here [default: 127.0.0.1:8080, or a free loopback port when it is taken]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand demo" -l address -d 'Temporal frontend address; TEMPORAL_HOST_PORT is read too [default: the profile\'s, else localhost:7233]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand demo" -l namespace -d 'Temporal namespace [default: the profile\'s, else default]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand demo" -l task-queue -d 'Task queue the worker polls and orders are sent to [default: orderflow]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand demo" -l profile -d 'Profile to read from the Temporal CLI\'s config file' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand demo" -l config-file -d 'The Temporal CLI\'s config file [default: its own, temporal.toml]' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand demo" -l ui-url -d 'Web UI base for order links [default: the address\'s host, port 8233]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand demo" -l connect-timeout -d 'How long to wait for Temporal or PostgreSQL to answer before giving up (exit 8)' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand demo" -l encryption-key-file -d 'Encrypt every payload sent to Temporal with the keys in this file: one KEY_ID:BASE64_OF_32_BYTES per line, the first encrypts, all decrypt; it must be readable by its owner only' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand demo" -l api-key -d 'API key for Temporal Cloud; turns TLS on. Never printed' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand demo" -l tls-cert-path -d 'Client certificate for mTLS' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand demo" -l tls-key-path -d 'Client private key for mTLS' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand demo" -l tls-ca-path -d 'CA certificate to verify the server with' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand demo" -l tls-server-name -d 'Server name to verify the certificate against' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand demo" -l database-url -d 'PostgreSQL URL, postgres://USER:PASSWORD@HOST:PORT/DB; when unset, built from POSTGRES_HOST, POSTGRES_PORT, POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DB. Its password is never printed' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand demo" -s o -l output -d 'Output format for data on stdout: text for people, json for scripts, jsonl (JSON Lines) for the changes `order watch` follows' -r -f -a "text\t'Tables and sentences for people'
json\t'Stable JSON on stdout (JSON Lines for `order watch` and `order create --watch`); errors as JSON on stderr'
jsonl\t'JSON Lines: one record per line for `order watch` and `order create` (with or without --watch); commands that print one document print it as with json'"
complete -c orderflow -n "__fish_orderflow_using_subcommand demo" -l color -d 'When to use colour; NO_COLOR turns it off under auto' -r -f -a "auto\t'Colour when writing to a terminal and `NO_COLOR` is not set'
always\t''
never\t''"
complete -c orderflow -n "__fish_orderflow_using_subcommand demo" -l log-format -d 'Log line format on stderr [default: json with -o json or jsonl, else text]' -r -f -a "text\t''
json\t''"
complete -c orderflow -n "__fish_orderflow_using_subcommand demo" -l keep -d 'Leave the stack running after the demo'
complete -c orderflow -n "__fish_orderflow_using_subcommand demo" -l encrypt -d 'Encrypt every payload: with --encryption-key-file\'s keys, else a throwaway key; the Web UI decodes through a codec server this command runs on 127.0.0.1'
complete -c orderflow -n "__fish_orderflow_using_subcommand demo" -l tls -d 'Connect to Temporal over TLS'
complete -c orderflow -n "__fish_orderflow_using_subcommand demo" -s v -l verbose -d 'More log detail on stderr (-v, -vv, -vvv); RUST_LOG overrides'
complete -c orderflow -n "__fish_orderflow_using_subcommand demo" -s q -l quiet -d 'Only errors on stderr: no progress, notes or warnings'
complete -c orderflow -n "__fish_orderflow_using_subcommand demo" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c orderflow -n "__fish_orderflow_using_subcommand demo" -s V -l version -d 'Print version'
complete -c orderflow -n "__fish_orderflow_using_subcommand bench" -l orders -d 'Orders per throughput run (N), split over the rounds' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand bench" -l concurrency -d 'Orders in flight during the throughput runs (C)' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand bench" -l rounds -d 'Alternate baseline and orderflow over this many rounds (N/rounds each time), swapping which goes first, so drift in the machine\'s or the server\'s speed hits both alike' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand bench" -l single -d 'Sequential orders for single-order latency (R)' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand bench" -l in-flight -d 'Orders started at once for the memory measurement (M)' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand bench" -l workers -d 'Separate worker processes on the real path (W)' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand bench" -l hot -d 'Orders for the one-product run (H), on a stock of H/2; 0 skips it' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand bench" -l big-tables -d 'Also fill the orders table to this many rows and time `order list` (with each filter, and a deep page), `order status` and `audit --all --database-only`, each as a whole process; 0 skips it' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand bench" -l api-orders -d 'Orders per round and way for the API run: started through `POST /api/orders` of an `orderflow serve` process, and by this process\'s client, alternating (0: no API run)' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand bench" -l streams -d 'Events streams one `serve` process holds open at once in the API run, for its memory and CPU (at most the orders it started: --api-orders × --rounds; 0: none)' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand bench" -l rate -d 'Open loop on the real path: start orders at this steady rate for --rate-duration, whether or not earlier ones have ended, and report latency start -> COMPLETED. Orders a second (40, 40/s) or a share of the maximum the throughput run measured (80%); a list for a curve: 25%,50%,80%,100%' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand bench" -l rate-duration -d 'How long each --rate starts orders' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand bench" -l address -d 'Temporal frontend address; TEMPORAL_HOST_PORT is read too [default: the profile\'s, else localhost:7233]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand bench" -l namespace -d 'Temporal namespace [default: the profile\'s, else default]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand bench" -l task-queue -d 'Task queue the worker polls and orders are sent to [default: orderflow]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand bench" -l profile -d 'Profile to read from the Temporal CLI\'s config file' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand bench" -l config-file -d 'The Temporal CLI\'s config file [default: its own, temporal.toml]' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand bench" -l ui-url -d 'Web UI base for order links [default: the address\'s host, port 8233]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand bench" -l connect-timeout -d 'How long to wait for Temporal or PostgreSQL to answer before giving up (exit 8)' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand bench" -l encryption-key-file -d 'Encrypt every payload sent to Temporal with the keys in this file: one KEY_ID:BASE64_OF_32_BYTES per line, the first encrypts, all decrypt; it must be readable by its owner only' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand bench" -l api-key -d 'API key for Temporal Cloud; turns TLS on. Never printed' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand bench" -l tls-cert-path -d 'Client certificate for mTLS' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand bench" -l tls-key-path -d 'Client private key for mTLS' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand bench" -l tls-ca-path -d 'CA certificate to verify the server with' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand bench" -l tls-server-name -d 'Server name to verify the certificate against' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand bench" -l database-url -d 'PostgreSQL URL, postgres://USER:PASSWORD@HOST:PORT/DB; when unset, built from POSTGRES_HOST, POSTGRES_PORT, POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DB. Its password is never printed' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand bench" -s o -l output -d 'Output format for data on stdout: text for people, json for scripts, jsonl (JSON Lines) for the changes `order watch` follows' -r -f -a "text\t'Tables and sentences for people'
json\t'Stable JSON on stdout (JSON Lines for `order watch` and `order create --watch`); errors as JSON on stderr'
jsonl\t'JSON Lines: one record per line for `order watch` and `order create` (with or without --watch); commands that print one document print it as with json'"
complete -c orderflow -n "__fish_orderflow_using_subcommand bench" -l color -d 'When to use colour; NO_COLOR turns it off under auto' -r -f -a "auto\t'Colour when writing to a terminal and `NO_COLOR` is not set'
always\t''
never\t''"
complete -c orderflow -n "__fish_orderflow_using_subcommand bench" -l log-format -d 'Log line format on stderr [default: json with -o json or jsonl, else text]' -r -f -a "text\t''
json\t''"
complete -c orderflow -n "__fish_orderflow_using_subcommand bench" -l no-eager -d 'Start the in-process run\'s workflows without eager start too'
complete -c orderflow -n "__fish_orderflow_using_subcommand bench" -l metrics -d 'Record the worker\'s metrics as `worker --metrics-address` does (to measure what they cost)'
complete -c orderflow -n "__fish_orderflow_using_subcommand bench" -l encrypt -d 'Encrypt every payload, as with --encryption-key-file (a throwaway key unless one is given), to measure what encryption costs'
complete -c orderflow -n "__fish_orderflow_using_subcommand bench" -l tls -d 'Connect to Temporal over TLS'
complete -c orderflow -n "__fish_orderflow_using_subcommand bench" -s v -l verbose -d 'More log detail on stderr (-v, -vv, -vvv); RUST_LOG overrides'
complete -c orderflow -n "__fish_orderflow_using_subcommand bench" -s q -l quiet -d 'Only errors on stderr: no progress, notes or warnings'
complete -c orderflow -n "__fish_orderflow_using_subcommand bench" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c orderflow -n "__fish_orderflow_using_subcommand bench" -s V -l version -d 'Print version'
complete -c orderflow -n "__fish_orderflow_using_subcommand codec-server" -l listen -d 'Address to listen on' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand codec-server" -l allow-origin -d 'An origin a browser may call from (the Web UI\'s, e.g. http://localhost:8233); repeat for several, `*` for any' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand codec-server" -l auth-token-file -d 'Require `Authorization: Bearer <token>` with the token in this file (mode 0600); needed to listen on an address other machines reach' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand codec-server" -l allow-host -d 'A host name requests may be addressed to (their `Host` header), besides localhost, loopback addresses and --listen\'s; repeat for several. Others are refused, so a web page cannot reach the server through a name of its own that points here' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand codec-server" -l address -d 'Temporal frontend address; TEMPORAL_HOST_PORT is read too [default: the profile\'s, else localhost:7233]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand codec-server" -l namespace -d 'Temporal namespace [default: the profile\'s, else default]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand codec-server" -l task-queue -d 'Task queue the worker polls and orders are sent to [default: orderflow]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand codec-server" -l profile -d 'Profile to read from the Temporal CLI\'s config file' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand codec-server" -l config-file -d 'The Temporal CLI\'s config file [default: its own, temporal.toml]' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand codec-server" -l ui-url -d 'Web UI base for order links [default: the address\'s host, port 8233]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand codec-server" -l connect-timeout -d 'How long to wait for Temporal or PostgreSQL to answer before giving up (exit 8)' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand codec-server" -l encryption-key-file -d 'Encrypt every payload sent to Temporal with the keys in this file: one KEY_ID:BASE64_OF_32_BYTES per line, the first encrypts, all decrypt; it must be readable by its owner only' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand codec-server" -l api-key -d 'API key for Temporal Cloud; turns TLS on. Never printed' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand codec-server" -l tls-cert-path -d 'Client certificate for mTLS' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand codec-server" -l tls-key-path -d 'Client private key for mTLS' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand codec-server" -l tls-ca-path -d 'CA certificate to verify the server with' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand codec-server" -l tls-server-name -d 'Server name to verify the certificate against' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand codec-server" -l database-url -d 'PostgreSQL URL, postgres://USER:PASSWORD@HOST:PORT/DB; when unset, built from POSTGRES_HOST, POSTGRES_PORT, POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DB. Its password is never printed' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand codec-server" -s o -l output -d 'Output format for data on stdout: text for people, json for scripts, jsonl (JSON Lines) for the changes `order watch` follows' -r -f -a "text\t'Tables and sentences for people'
json\t'Stable JSON on stdout (JSON Lines for `order watch` and `order create --watch`); errors as JSON on stderr'
jsonl\t'JSON Lines: one record per line for `order watch` and `order create` (with or without --watch); commands that print one document print it as with json'"
complete -c orderflow -n "__fish_orderflow_using_subcommand codec-server" -l color -d 'When to use colour; NO_COLOR turns it off under auto' -r -f -a "auto\t'Colour when writing to a terminal and `NO_COLOR` is not set'
always\t''
never\t''"
complete -c orderflow -n "__fish_orderflow_using_subcommand codec-server" -l log-format -d 'Log line format on stderr [default: json with -o json or jsonl, else text]' -r -f -a "text\t''
json\t''"
complete -c orderflow -n "__fish_orderflow_using_subcommand codec-server" -l tls -d 'Connect to Temporal over TLS'
complete -c orderflow -n "__fish_orderflow_using_subcommand codec-server" -s v -l verbose -d 'More log detail on stderr (-v, -vv, -vvv); RUST_LOG overrides'
complete -c orderflow -n "__fish_orderflow_using_subcommand codec-server" -s q -l quiet -d 'Only errors on stderr: no progress, notes or warnings'
complete -c orderflow -n "__fish_orderflow_using_subcommand codec-server" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c orderflow -n "__fish_orderflow_using_subcommand codec-server" -s V -l version -d 'Print version'
complete -c orderflow -n "__fish_orderflow_using_subcommand serve" -l listen -d 'Address to listen on; one other machines reach needs --api-token-file or --no-auth' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand serve" -l api-token-file -d 'Require `Authorization: Bearer <token>` on /api with one of the tokens in this file, one a line (mode 0600); the page asks for one' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand serve" -l max-body -d 'The largest request body accepted (e.g. 1MiB, 256KiB, 65536)' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand serve" -l request-timeout -d 'Time a request may take to be answered, its body included (not the events stream, which lasts until its order ends)' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand serve" -l header-timeout -d 'Time a client has to send a request\'s headers: a slow or silent client does not hold a connection open' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand serve" -l max-connections -d 'At most this many connections at once; more wait to be accepted' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand serve" -l allow-origin -d 'An origin a browser may call the API from (CORS), e.g. https://shop.example; repeat for several, `*` for any [default: none]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand serve" -l allow-host -d 'A host name requests may be addressed to without a token (their `Host` header), besides localhost, loopback addresses and --listen\'s; repeat for several' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand serve" -l metrics-address -d 'Serve /metrics (Prometheus: requests by route and status, latency) on this address (off by default)' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand serve" -l address -d 'Temporal frontend address; TEMPORAL_HOST_PORT is read too [default: the profile\'s, else localhost:7233]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand serve" -l namespace -d 'Temporal namespace [default: the profile\'s, else default]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand serve" -l task-queue -d 'Task queue the worker polls and orders are sent to [default: orderflow]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand serve" -l profile -d 'Profile to read from the Temporal CLI\'s config file' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand serve" -l config-file -d 'The Temporal CLI\'s config file [default: its own, temporal.toml]' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand serve" -l ui-url -d 'Web UI base for order links [default: the address\'s host, port 8233]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand serve" -l connect-timeout -d 'How long to wait for Temporal or PostgreSQL to answer before giving up (exit 8)' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand serve" -l encryption-key-file -d 'Encrypt every payload sent to Temporal with the keys in this file: one KEY_ID:BASE64_OF_32_BYTES per line, the first encrypts, all decrypt; it must be readable by its owner only' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand serve" -l api-key -d 'API key for Temporal Cloud; turns TLS on. Never printed' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand serve" -l tls-cert-path -d 'Client certificate for mTLS' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand serve" -l tls-key-path -d 'Client private key for mTLS' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand serve" -l tls-ca-path -d 'CA certificate to verify the server with' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand serve" -l tls-server-name -d 'Server name to verify the certificate against' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand serve" -l database-url -d 'PostgreSQL URL, postgres://USER:PASSWORD@HOST:PORT/DB; when unset, built from POSTGRES_HOST, POSTGRES_PORT, POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DB. Its password is never printed' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand serve" -s o -l output -d 'Output format for data on stdout: text for people, json for scripts, jsonl (JSON Lines) for the changes `order watch` follows' -r -f -a "text\t'Tables and sentences for people'
json\t'Stable JSON on stdout (JSON Lines for `order watch` and `order create --watch`); errors as JSON on stderr'
jsonl\t'JSON Lines: one record per line for `order watch` and `order create` (with or without --watch); commands that print one document print it as with json'"
complete -c orderflow -n "__fish_orderflow_using_subcommand serve" -l color -d 'When to use colour; NO_COLOR turns it off under auto' -r -f -a "auto\t'Colour when writing to a terminal and `NO_COLOR` is not set'
always\t''
never\t''"
complete -c orderflow -n "__fish_orderflow_using_subcommand serve" -l log-format -d 'Log line format on stderr [default: json with -o json or jsonl, else text]' -r -f -a "text\t''
json\t''"
complete -c orderflow -n "__fish_orderflow_using_subcommand serve" -l no-auth -d 'Listen beyond loopback without a token (behind a proxy that authenticates); requests must still be addressed to a loopback name, the listening address or an --allow-host'
complete -c orderflow -n "__fish_orderflow_using_subcommand serve" -l openapi -d 'Print the OpenAPI document and exit'
complete -c orderflow -n "__fish_orderflow_using_subcommand serve" -l tls -d 'Connect to Temporal over TLS'
complete -c orderflow -n "__fish_orderflow_using_subcommand serve" -s v -l verbose -d 'More log detail on stderr (-v, -vv, -vvv); RUST_LOG overrides'
complete -c orderflow -n "__fish_orderflow_using_subcommand serve" -s q -l quiet -d 'Only errors on stderr: no progress, notes or warnings'
complete -c orderflow -n "__fish_orderflow_using_subcommand serve" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c orderflow -n "__fish_orderflow_using_subcommand serve" -s V -l version -d 'Print version'
complete -c orderflow -n "__fish_orderflow_using_subcommand doctor" -l address -d 'Temporal frontend address; TEMPORAL_HOST_PORT is read too [default: the profile\'s, else localhost:7233]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand doctor" -l namespace -d 'Temporal namespace [default: the profile\'s, else default]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand doctor" -l task-queue -d 'Task queue the worker polls and orders are sent to [default: orderflow]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand doctor" -l profile -d 'Profile to read from the Temporal CLI\'s config file' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand doctor" -l config-file -d 'The Temporal CLI\'s config file [default: its own, temporal.toml]' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand doctor" -l ui-url -d 'Web UI base for order links [default: the address\'s host, port 8233]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand doctor" -l connect-timeout -d 'How long to wait for Temporal or PostgreSQL to answer before giving up (exit 8)' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand doctor" -l encryption-key-file -d 'Encrypt every payload sent to Temporal with the keys in this file: one KEY_ID:BASE64_OF_32_BYTES per line, the first encrypts, all decrypt; it must be readable by its owner only' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand doctor" -l api-key -d 'API key for Temporal Cloud; turns TLS on. Never printed' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand doctor" -l tls-cert-path -d 'Client certificate for mTLS' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand doctor" -l tls-key-path -d 'Client private key for mTLS' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand doctor" -l tls-ca-path -d 'CA certificate to verify the server with' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand doctor" -l tls-server-name -d 'Server name to verify the certificate against' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand doctor" -l database-url -d 'PostgreSQL URL, postgres://USER:PASSWORD@HOST:PORT/DB; when unset, built from POSTGRES_HOST, POSTGRES_PORT, POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DB. Its password is never printed' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand doctor" -s o -l output -d 'Output format for data on stdout: text for people, json for scripts, jsonl (JSON Lines) for the changes `order watch` follows' -r -f -a "text\t'Tables and sentences for people'
json\t'Stable JSON on stdout (JSON Lines for `order watch` and `order create --watch`); errors as JSON on stderr'
jsonl\t'JSON Lines: one record per line for `order watch` and `order create` (with or without --watch); commands that print one document print it as with json'"
complete -c orderflow -n "__fish_orderflow_using_subcommand doctor" -l color -d 'When to use colour; NO_COLOR turns it off under auto' -r -f -a "auto\t'Colour when writing to a terminal and `NO_COLOR` is not set'
always\t''
never\t''"
complete -c orderflow -n "__fish_orderflow_using_subcommand doctor" -l log-format -d 'Log line format on stderr [default: json with -o json or jsonl, else text]' -r -f -a "text\t''
json\t''"
complete -c orderflow -n "__fish_orderflow_using_subcommand doctor" -l tls -d 'Connect to Temporal over TLS'
complete -c orderflow -n "__fish_orderflow_using_subcommand doctor" -s v -l verbose -d 'More log detail on stderr (-v, -vv, -vvv); RUST_LOG overrides'
complete -c orderflow -n "__fish_orderflow_using_subcommand doctor" -s q -l quiet -d 'Only errors on stderr: no progress, notes or warnings'
complete -c orderflow -n "__fish_orderflow_using_subcommand doctor" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c orderflow -n "__fish_orderflow_using_subcommand doctor" -s V -l version -d 'Print version'
complete -c orderflow -n "__fish_orderflow_using_subcommand audit" -l since -d 'Only the orders created in the last DURATION (e.g. 1h, 7d)' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand audit" -l stuck-after -d 'An order not ended this long after it was created is stuck' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand audit" -l address -d 'Temporal frontend address; TEMPORAL_HOST_PORT is read too [default: the profile\'s, else localhost:7233]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand audit" -l namespace -d 'Temporal namespace [default: the profile\'s, else default]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand audit" -l task-queue -d 'Task queue the worker polls and orders are sent to [default: orderflow]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand audit" -l profile -d 'Profile to read from the Temporal CLI\'s config file' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand audit" -l config-file -d 'The Temporal CLI\'s config file [default: its own, temporal.toml]' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand audit" -l ui-url -d 'Web UI base for order links [default: the address\'s host, port 8233]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand audit" -l connect-timeout -d 'How long to wait for Temporal or PostgreSQL to answer before giving up (exit 8)' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand audit" -l encryption-key-file -d 'Encrypt every payload sent to Temporal with the keys in this file: one KEY_ID:BASE64_OF_32_BYTES per line, the first encrypts, all decrypt; it must be readable by its owner only' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand audit" -l api-key -d 'API key for Temporal Cloud; turns TLS on. Never printed' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand audit" -l tls-cert-path -d 'Client certificate for mTLS' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand audit" -l tls-key-path -d 'Client private key for mTLS' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand audit" -l tls-ca-path -d 'CA certificate to verify the server with' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand audit" -l tls-server-name -d 'Server name to verify the certificate against' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand audit" -l database-url -d 'PostgreSQL URL, postgres://USER:PASSWORD@HOST:PORT/DB; when unset, built from POSTGRES_HOST, POSTGRES_PORT, POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DB. Its password is never printed' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand audit" -s o -l output -d 'Output format for data on stdout: text for people, json for scripts, jsonl (JSON Lines) for the changes `order watch` follows' -r -f -a "text\t'Tables and sentences for people'
json\t'Stable JSON on stdout (JSON Lines for `order watch` and `order create --watch`); errors as JSON on stderr'
jsonl\t'JSON Lines: one record per line for `order watch` and `order create` (with or without --watch); commands that print one document print it as with json'"
complete -c orderflow -n "__fish_orderflow_using_subcommand audit" -l color -d 'When to use colour; NO_COLOR turns it off under auto' -r -f -a "auto\t'Colour when writing to a terminal and `NO_COLOR` is not set'
always\t''
never\t''"
complete -c orderflow -n "__fish_orderflow_using_subcommand audit" -l log-format -d 'Log line format on stderr [default: json with -o json or jsonl, else text]' -r -f -a "text\t''
json\t''"
complete -c orderflow -n "__fish_orderflow_using_subcommand audit" -l all -d 'Every order, however old'
complete -c orderflow -n "__fish_orderflow_using_subcommand audit" -l database-only -d 'Check only what PostgreSQL holds (money, stock, notices), without Temporal'
complete -c orderflow -n "__fish_orderflow_using_subcommand audit" -l tls -d 'Connect to Temporal over TLS'
complete -c orderflow -n "__fish_orderflow_using_subcommand audit" -s v -l verbose -d 'More log detail on stderr (-v, -vv, -vvv); RUST_LOG overrides'
complete -c orderflow -n "__fish_orderflow_using_subcommand audit" -s q -l quiet -d 'Only errors on stderr: no progress, notes or warnings'
complete -c orderflow -n "__fish_orderflow_using_subcommand audit" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c orderflow -n "__fish_orderflow_using_subcommand audit" -s V -l version -d 'Print version'
complete -c orderflow -n "__fish_orderflow_using_subcommand replay" -l since -d 'The orders of the task queue started in the last DURATION' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand replay" -l sample -d 'At most N of those orders, picked at random' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand replay" -l id -d 'This order\'s history (repeatable), instead of the recent ones' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand replay" -l dir -d 'The exported histories in DIR (every .json file, as `temporal workflow show -o json` writes them), instead of the server\'s' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand replay" -l address -d 'Temporal frontend address; TEMPORAL_HOST_PORT is read too [default: the profile\'s, else localhost:7233]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand replay" -l namespace -d 'Temporal namespace [default: the profile\'s, else default]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand replay" -l task-queue -d 'Task queue the worker polls and orders are sent to [default: orderflow]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand replay" -l profile -d 'Profile to read from the Temporal CLI\'s config file' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand replay" -l config-file -d 'The Temporal CLI\'s config file [default: its own, temporal.toml]' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand replay" -l ui-url -d 'Web UI base for order links [default: the address\'s host, port 8233]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand replay" -l connect-timeout -d 'How long to wait for Temporal or PostgreSQL to answer before giving up (exit 8)' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand replay" -l encryption-key-file -d 'Encrypt every payload sent to Temporal with the keys in this file: one KEY_ID:BASE64_OF_32_BYTES per line, the first encrypts, all decrypt; it must be readable by its owner only' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand replay" -l api-key -d 'API key for Temporal Cloud; turns TLS on. Never printed' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand replay" -l tls-cert-path -d 'Client certificate for mTLS' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand replay" -l tls-key-path -d 'Client private key for mTLS' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand replay" -l tls-ca-path -d 'CA certificate to verify the server with' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand replay" -l tls-server-name -d 'Server name to verify the certificate against' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand replay" -l database-url -d 'PostgreSQL URL, postgres://USER:PASSWORD@HOST:PORT/DB; when unset, built from POSTGRES_HOST, POSTGRES_PORT, POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DB. Its password is never printed' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand replay" -s o -l output -d 'Output format for data on stdout: text for people, json for scripts, jsonl (JSON Lines) for the changes `order watch` follows' -r -f -a "text\t'Tables and sentences for people'
json\t'Stable JSON on stdout (JSON Lines for `order watch` and `order create --watch`); errors as JSON on stderr'
jsonl\t'JSON Lines: one record per line for `order watch` and `order create` (with or without --watch); commands that print one document print it as with json'"
complete -c orderflow -n "__fish_orderflow_using_subcommand replay" -l color -d 'When to use colour; NO_COLOR turns it off under auto' -r -f -a "auto\t'Colour when writing to a terminal and `NO_COLOR` is not set'
always\t''
never\t''"
complete -c orderflow -n "__fish_orderflow_using_subcommand replay" -l log-format -d 'Log line format on stderr [default: json with -o json or jsonl, else text]' -r -f -a "text\t''
json\t''"
complete -c orderflow -n "__fish_orderflow_using_subcommand replay" -l tls -d 'Connect to Temporal over TLS'
complete -c orderflow -n "__fish_orderflow_using_subcommand replay" -s v -l verbose -d 'More log detail on stderr (-v, -vv, -vvv); RUST_LOG overrides'
complete -c orderflow -n "__fish_orderflow_using_subcommand replay" -s q -l quiet -d 'Only errors on stderr: no progress, notes or warnings'
complete -c orderflow -n "__fish_orderflow_using_subcommand replay" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c orderflow -n "__fish_orderflow_using_subcommand replay" -s V -l version -d 'Print version'
complete -c orderflow -n "__fish_orderflow_using_subcommand completions" -l address -d 'Temporal frontend address; TEMPORAL_HOST_PORT is read too [default: the profile\'s, else localhost:7233]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand completions" -l namespace -d 'Temporal namespace [default: the profile\'s, else default]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand completions" -l task-queue -d 'Task queue the worker polls and orders are sent to [default: orderflow]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand completions" -l profile -d 'Profile to read from the Temporal CLI\'s config file' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand completions" -l config-file -d 'The Temporal CLI\'s config file [default: its own, temporal.toml]' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand completions" -l ui-url -d 'Web UI base for order links [default: the address\'s host, port 8233]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand completions" -l connect-timeout -d 'How long to wait for Temporal or PostgreSQL to answer before giving up (exit 8)' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand completions" -l encryption-key-file -d 'Encrypt every payload sent to Temporal with the keys in this file: one KEY_ID:BASE64_OF_32_BYTES per line, the first encrypts, all decrypt; it must be readable by its owner only' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand completions" -l api-key -d 'API key for Temporal Cloud; turns TLS on. Never printed' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand completions" -l tls-cert-path -d 'Client certificate for mTLS' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand completions" -l tls-key-path -d 'Client private key for mTLS' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand completions" -l tls-ca-path -d 'CA certificate to verify the server with' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand completions" -l tls-server-name -d 'Server name to verify the certificate against' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand completions" -l database-url -d 'PostgreSQL URL, postgres://USER:PASSWORD@HOST:PORT/DB; when unset, built from POSTGRES_HOST, POSTGRES_PORT, POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DB. Its password is never printed' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand completions" -s o -l output -d 'Output format for data on stdout: text for people, json for scripts, jsonl (JSON Lines) for the changes `order watch` follows' -r -f -a "text\t'Tables and sentences for people'
json\t'Stable JSON on stdout (JSON Lines for `order watch` and `order create --watch`); errors as JSON on stderr'
jsonl\t'JSON Lines: one record per line for `order watch` and `order create` (with or without --watch); commands that print one document print it as with json'"
complete -c orderflow -n "__fish_orderflow_using_subcommand completions" -l color -d 'When to use colour; NO_COLOR turns it off under auto' -r -f -a "auto\t'Colour when writing to a terminal and `NO_COLOR` is not set'
always\t''
never\t''"
complete -c orderflow -n "__fish_orderflow_using_subcommand completions" -l log-format -d 'Log line format on stderr [default: json with -o json or jsonl, else text]' -r -f -a "text\t''
json\t''"
complete -c orderflow -n "__fish_orderflow_using_subcommand completions" -l tls -d 'Connect to Temporal over TLS'
complete -c orderflow -n "__fish_orderflow_using_subcommand completions" -s v -l verbose -d 'More log detail on stderr (-v, -vv, -vvv); RUST_LOG overrides'
complete -c orderflow -n "__fish_orderflow_using_subcommand completions" -s q -l quiet -d 'Only errors on stderr: no progress, notes or warnings'
complete -c orderflow -n "__fish_orderflow_using_subcommand completions" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c orderflow -n "__fish_orderflow_using_subcommand completions" -s V -l version -d 'Print version'
complete -c orderflow -n "__fish_orderflow_using_subcommand man" -l out-dir -d 'Write every page (orderflow.1, orderflow-order-create.1, …) into DIR instead of printing orderflow.1' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand man" -l address -d 'Temporal frontend address; TEMPORAL_HOST_PORT is read too [default: the profile\'s, else localhost:7233]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand man" -l namespace -d 'Temporal namespace [default: the profile\'s, else default]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand man" -l task-queue -d 'Task queue the worker polls and orders are sent to [default: orderflow]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand man" -l profile -d 'Profile to read from the Temporal CLI\'s config file' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand man" -l config-file -d 'The Temporal CLI\'s config file [default: its own, temporal.toml]' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand man" -l ui-url -d 'Web UI base for order links [default: the address\'s host, port 8233]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand man" -l connect-timeout -d 'How long to wait for Temporal or PostgreSQL to answer before giving up (exit 8)' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand man" -l encryption-key-file -d 'Encrypt every payload sent to Temporal with the keys in this file: one KEY_ID:BASE64_OF_32_BYTES per line, the first encrypts, all decrypt; it must be readable by its owner only' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand man" -l api-key -d 'API key for Temporal Cloud; turns TLS on. Never printed' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand man" -l tls-cert-path -d 'Client certificate for mTLS' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand man" -l tls-key-path -d 'Client private key for mTLS' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand man" -l tls-ca-path -d 'CA certificate to verify the server with' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand man" -l tls-server-name -d 'Server name to verify the certificate against' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand man" -l database-url -d 'PostgreSQL URL, postgres://USER:PASSWORD@HOST:PORT/DB; when unset, built from POSTGRES_HOST, POSTGRES_PORT, POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DB. Its password is never printed' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand man" -s o -l output -d 'Output format for data on stdout: text for people, json for scripts, jsonl (JSON Lines) for the changes `order watch` follows' -r -f -a "text\t'Tables and sentences for people'
json\t'Stable JSON on stdout (JSON Lines for `order watch` and `order create --watch`); errors as JSON on stderr'
jsonl\t'JSON Lines: one record per line for `order watch` and `order create` (with or without --watch); commands that print one document print it as with json'"
complete -c orderflow -n "__fish_orderflow_using_subcommand man" -l color -d 'When to use colour; NO_COLOR turns it off under auto' -r -f -a "auto\t'Colour when writing to a terminal and `NO_COLOR` is not set'
always\t''
never\t''"
complete -c orderflow -n "__fish_orderflow_using_subcommand man" -l log-format -d 'Log line format on stderr [default: json with -o json or jsonl, else text]' -r -f -a "text\t''
json\t''"
complete -c orderflow -n "__fish_orderflow_using_subcommand man" -l tls -d 'Connect to Temporal over TLS'
complete -c orderflow -n "__fish_orderflow_using_subcommand man" -s v -l verbose -d 'More log detail on stderr (-v, -vv, -vvv); RUST_LOG overrides'
complete -c orderflow -n "__fish_orderflow_using_subcommand man" -s q -l quiet -d 'Only errors on stderr: no progress, notes or warnings'
complete -c orderflow -n "__fish_orderflow_using_subcommand man" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c orderflow -n "__fish_orderflow_using_subcommand man" -s V -l version -d 'Print version'
complete -c orderflow -n "__fish_orderflow_using_subcommand options" -l address -d 'Temporal frontend address; TEMPORAL_HOST_PORT is read too [default: the profile\'s, else localhost:7233]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand options" -l namespace -d 'Temporal namespace [default: the profile\'s, else default]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand options" -l task-queue -d 'Task queue the worker polls and orders are sent to [default: orderflow]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand options" -l profile -d 'Profile to read from the Temporal CLI\'s config file' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand options" -l config-file -d 'The Temporal CLI\'s config file [default: its own, temporal.toml]' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand options" -l ui-url -d 'Web UI base for order links [default: the address\'s host, port 8233]' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand options" -l connect-timeout -d 'How long to wait for Temporal or PostgreSQL to answer before giving up (exit 8)' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand options" -l encryption-key-file -d 'Encrypt every payload sent to Temporal with the keys in this file: one KEY_ID:BASE64_OF_32_BYTES per line, the first encrypts, all decrypt; it must be readable by its owner only' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand options" -l api-key -d 'API key for Temporal Cloud; turns TLS on. Never printed' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand options" -l tls-cert-path -d 'Client certificate for mTLS' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand options" -l tls-key-path -d 'Client private key for mTLS' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand options" -l tls-ca-path -d 'CA certificate to verify the server with' -r -F
complete -c orderflow -n "__fish_orderflow_using_subcommand options" -l tls-server-name -d 'Server name to verify the certificate against' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand options" -l database-url -d 'PostgreSQL URL, postgres://USER:PASSWORD@HOST:PORT/DB; when unset, built from POSTGRES_HOST, POSTGRES_PORT, POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DB. Its password is never printed' -r
complete -c orderflow -n "__fish_orderflow_using_subcommand options" -s o -l output -d 'Output format for data on stdout: text for people, json for scripts, jsonl (JSON Lines) for the changes `order watch` follows' -r -f -a "text\t'Tables and sentences for people'
json\t'Stable JSON on stdout (JSON Lines for `order watch` and `order create --watch`); errors as JSON on stderr'
jsonl\t'JSON Lines: one record per line for `order watch` and `order create` (with or without --watch); commands that print one document print it as with json'"
complete -c orderflow -n "__fish_orderflow_using_subcommand options" -l color -d 'When to use colour; NO_COLOR turns it off under auto' -r -f -a "auto\t'Colour when writing to a terminal and `NO_COLOR` is not set'
always\t''
never\t''"
complete -c orderflow -n "__fish_orderflow_using_subcommand options" -l log-format -d 'Log line format on stderr [default: json with -o json or jsonl, else text]' -r -f -a "text\t''
json\t''"
complete -c orderflow -n "__fish_orderflow_using_subcommand options" -l tls -d 'Connect to Temporal over TLS'
complete -c orderflow -n "__fish_orderflow_using_subcommand options" -s v -l verbose -d 'More log detail on stderr (-v, -vv, -vvv); RUST_LOG overrides'
complete -c orderflow -n "__fish_orderflow_using_subcommand options" -s q -l quiet -d 'Only errors on stderr: no progress, notes or warnings'
complete -c orderflow -n "__fish_orderflow_using_subcommand options" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c orderflow -n "__fish_orderflow_using_subcommand options" -s V -l version -d 'Print version'
complete -c orderflow -n "__fish_orderflow_using_subcommand help; and not __fish_seen_subcommand_from worker order db product dev demo bench codec-server serve doctor audit replay completions man options help" -f -a "worker" -d 'Run the order workflow and its activities until SIGINT/SIGTERM, then drain'
complete -c orderflow -n "__fish_orderflow_using_subcommand help; and not __fish_seen_subcommand_from worker order db product dev demo bench codec-server serve doctor audit replay completions man options help" -f -a "order" -d 'Submit, inspect, follow and cancel orders'
complete -c orderflow -n "__fish_orderflow_using_subcommand help; and not __fish_seen_subcommand_from worker order db product dev demo bench codec-server serve doctor audit replay completions man options help" -f -a "db" -d 'Apply, inspect and reset the PostgreSQL schema'
complete -c orderflow -n "__fish_orderflow_using_subcommand help; and not __fish_seen_subcommand_from worker order db product dev demo bench codec-server serve doctor audit replay completions man options help" -f -a "product" -d 'Manage the catalog and the stock orders draw on'
complete -c orderflow -n "__fish_orderflow_using_subcommand help; and not __fish_seen_subcommand_from worker order db product dev demo bench codec-server serve doctor audit replay completions man options help" -f -a "dev" -d 'Start a local stack (Temporal dev server, PostgreSQL, worker) for development'
complete -c orderflow -n "__fish_orderflow_using_subcommand help; and not __fish_seen_subcommand_from worker order db product dev demo bench codec-server serve doctor audit replay completions man options help" -f -a "demo" -d 'Run the sample orders on a local stack and show how each one ends'
complete -c orderflow -n "__fish_orderflow_using_subcommand help; and not __fish_seen_subcommand_from worker order db product dev demo bench codec-server serve doctor audit replay completions man options help" -f -a "bench" -d 'Measure throughput, latency and memory against an orchestration-only baseline'
complete -c orderflow -n "__fish_orderflow_using_subcommand help; and not __fish_seen_subcommand_from worker order db product dev demo bench codec-server serve doctor audit replay completions man options help" -f -a "codec-server" -d 'Serve the Temporal remote codec protocol, so the Web UI and `temporal --codec-endpoint` show encrypted orders decrypted'
complete -c orderflow -n "__fish_orderflow_using_subcommand help; and not __fish_seen_subcommand_from worker order db product dev demo bench codec-server serve doctor audit replay completions man options help" -f -a "serve" -d 'Serve the order API and the order page over HTTP'
complete -c orderflow -n "__fish_orderflow_using_subcommand help; and not __fish_seen_subcommand_from worker order db product dev demo bench codec-server serve doctor audit replay completions man options help" -f -a "doctor" -d 'Check the setup end to end and say how to fix what fails'
complete -c orderflow -n "__fish_orderflow_using_subcommand help; and not __fish_seen_subcommand_from worker order db product dev demo bench codec-server serve doctor audit replay completions man options help" -f -a "audit" -d 'Check money, stock and notices against how each order ended'
complete -c orderflow -n "__fish_orderflow_using_subcommand help; and not __fish_seen_subcommand_from worker order db product dev demo bench codec-server serve doctor audit replay completions man options help" -f -a "replay" -d 'Replay order histories against this binary\'s workflow code'
complete -c orderflow -n "__fish_orderflow_using_subcommand help; and not __fish_seen_subcommand_from worker order db product dev demo bench codec-server serve doctor audit replay completions man options help" -f -a "completions" -d 'Print shell completions'
complete -c orderflow -n "__fish_orderflow_using_subcommand help; and not __fish_seen_subcommand_from worker order db product dev demo bench codec-server serve doctor audit replay completions man options help" -f -a "man" -d 'Print or write man pages'
complete -c orderflow -n "__fish_orderflow_using_subcommand help; and not __fish_seen_subcommand_from worker order db product dev demo bench codec-server serve doctor audit replay completions man options help" -f -a "options" -d 'The options every command takes: Temporal, TLS, database, output (also `orderflow help options`)'
complete -c orderflow -n "__fish_orderflow_using_subcommand help; and not __fish_seen_subcommand_from worker order db product dev demo bench codec-server serve doctor audit replay completions man options help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c orderflow -n "__fish_orderflow_using_subcommand help; and __fish_seen_subcommand_from order" -f -a "create" -d 'Validate order files, then start one workflow per order'
complete -c orderflow -n "__fish_orderflow_using_subcommand help; and __fish_seen_subcommand_from order" -f -a "status" -d 'Show an order: status, step, attempts, failure, items and amounts'
complete -c orderflow -n "__fish_orderflow_using_subcommand help; and __fish_seen_subcommand_from order" -f -a "watch" -d 'Follow orders until each reaches COMPLETED, CANCELLED or FAILED'
complete -c orderflow -n "__fish_orderflow_using_subcommand help; and __fish_seen_subcommand_from order" -f -a "cancel" -d 'Cancel an order and wait for the outcome, or many (a selection)'
complete -c orderflow -n "__fish_orderflow_using_subcommand help; and __fish_seen_subcommand_from order" -f -a "resubmit" -d 'Start FAILED orders again as new orders (e.g. after a gateway outage)'
complete -c orderflow -n "__fish_orderflow_using_subcommand help; and __fish_seen_subcommand_from order" -f -a "list" -d 'List orders, newest first'
complete -c orderflow -n "__fish_orderflow_using_subcommand help; and __fish_seen_subcommand_from db" -f -a "migrate" -d 'Apply pending migrations (safe to repeat)'
complete -c orderflow -n "__fish_orderflow_using_subcommand help; and __fish_seen_subcommand_from db" -f -a "status" -d 'List applied and pending migrations'
complete -c orderflow -n "__fish_orderflow_using_subcommand help; and __fish_seen_subcommand_from db" -f -a "reset" -d 'Drop everything orderflow stored and re-apply the migrations'
complete -c orderflow -n "__fish_orderflow_using_subcommand help; and __fish_seen_subcommand_from product" -f -a "import" -d 'Insert or update products from a JSON file'
complete -c orderflow -n "__fish_orderflow_using_subcommand help; and __fish_seen_subcommand_from product" -f -a "list" -d 'Show the catalog with prices and stock'
complete -c orderflow -n "__fish_orderflow_using_subcommand help; and __fish_seen_subcommand_from dev" -f -a "env" -d 'Print the running stack\'s `export` lines again (`-o json`: its settings)'
