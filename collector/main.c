/* main.c — cinemon-collector: run the server, add a token, or check the configuration. */
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "access.h"
#include "alerting.h"
#include "arena.h"
#include "batch.h"
#include "config.h"
#include "csvimport.h"
#include "forward.h"
#include "http.h"
#include "ingest.h"
#include "log.h"
#include "metrics.h"
#include "query.h"
#include "retention.h"
#include "store.h"
#include "token.h"
#include "viewer_cmd.h"
#include "writer.h"

#ifndef CINEMON_VERSION
#define CINEMON_VERSION "0.1.0"
#endif

#define EXIT_RUNTIME 1
#define EXIT_USAGE 2
#define SHUTDOWN_GRACE_MS 10000
#define WRITER_MAX_GROUP 256
#define FORWARD_FLUSH_MS 2000 /* a clean stop tries this long to send the upstream spools */

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: cinemon-collector -c FILE                 run the collector\n"
        "       cinemon-collector -c FILE --check-config  validate FILE and exit\n"
        "       cinemon-collector -c FILE token add --agent ID --site CODE\n"
        "                                                 create an agent token; it is\n"
        "                                                 printed once, only its hash is kept\n"
        "       cinemon-collector -c FILE token add --agent ID --site '*'\n"
        "       cinemon-collector -c FILE token add --agent ID --scope province:P|chain:C\n"
        "                                                 a forwarding token: a collector\n"
        "                                                 below forwards as agent ID the\n"
        "                                                 batches of any site (in P or C)\n"
        "       cinemon-collector -c FILE token add --operator NAME [--site CODE]\n"
        "                                                 create an operator token (screen\n"
        "                                                 settings, acknowledgements) for one\n"
        "                                                 site, or every site without --site\n"
        "       cinemon-collector -c FILE viewer add NAME [--role viewer|operator]\n"
        "                     [--province P | --chain C | --site S] [--password-file F]\n"
        "                                                 create a dashboard login (national\n"
        "                                                 without a scope option); the password\n"
        "                                                 is one line on stdin or in F\n"
        "       cinemon-collector -c FILE viewer list | viewer remove NAME | viewer passwd NAME\n"
        "       cinemon-collector -c FILE import FILE.csv import sites and screens (columns\n"
        "                                                 in docs/screens.md), all or nothing\n"
        "       cinemon-collector -h | --help | --version\n"
        "exit status: 0 ok, 1 runtime error, 2 usage or configuration error\n");
}

static int valid_ident(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > CM_MAX_NAME) return 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p <= 0x20 || *p == 0x7f) return 0;
    return 1;
}

/* The store of the configured backend for a command, or NULL (reported; the description
 * names where the store is but never shows a PostgreSQL password). */
static co_store *open_store(const co_config *cfg)
{
    char err[512], where[256];
    co_store *store = NULL;
    if (co_config_open_store(cfg, &store, err, sizeof err) != 0) {
        co_config_store_desc(cfg, where, sizeof where);
        fprintf(stderr, "cinemon-collector: store %s: %s\n", where, err);
        return NULL;
    }
    return store;
}

/* A forwarding token's scope from `--scope province:P|chain:C|all` into buf ("province:P",
 * "chain:C" or "*", as the tokens table keeps it: ingest.h). 0 or -1 (reported). */
static int forward_scope_arg(const char *v, char *buf, size_t len)
{
    co_scope sc;
    if (strcmp(v, "all") == 0)
        snprintf(buf, len, "*");
    else if ((strncmp(v, "province:", 9) && strncmp(v, "chain:", 6)) || !valid_ident(v) ||
             strlen(v) > CM_MAX_NAME || !co_ingest_forward_scope(v, &sc)) {
        fprintf(stderr,
                "cinemon-collector: token add: --scope takes province:NAME, chain:NAME or "
                "all (at most %d printable bytes without spaces)\n",
                CM_MAX_NAME);
        return -1;
    } else {
        snprintf(buf, len, "%s", v);
    }
    return 0;
}

/* `token add --agent ID --site CODE`, `token add --agent ID --site '*' | --scope S` (a
 * forwarding token) or `token add --operator NAME [--site CODE]` (args after "token"). */
static int cmd_token(const co_config *cfg, int argc, char **argv)
{
    const char *agent = NULL, *site = NULL, *oper = NULL, *scope = NULL;
    if (argc < 1 || strcmp(argv[0], "add") != 0) {
        fprintf(stderr, "cinemon-collector: unknown token command (expected: token add --agent ID "
                        "--site CODE, or token add --operator NAME [--site CODE])\n");
        return EXIT_USAGE;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **dst = NULL;
        size_t nl = 0;
        if (!strncmp(a, "--agent", 7) && (a[7] == '\0' || a[7] == '='))
            dst = &agent, nl = 7;
        else if (!strncmp(a, "--site", 6) && (a[6] == '\0' || a[6] == '='))
            dst = &site, nl = 6;
        else if (!strncmp(a, "--operator", 10) && (a[10] == '\0' || a[10] == '='))
            dst = &oper, nl = 10;
        else if (!strncmp(a, "--scope", 7) && (a[7] == '\0' || a[7] == '='))
            dst = &scope, nl = 7;
        if (!dst) {
            fprintf(stderr, "cinemon-collector: token add: unknown argument '%s'\n", a);
            return EXIT_USAGE;
        }
        if (a[nl] == '=') {
            *dst = a + nl + 1;
        } else if (i + 1 < argc) {
            *dst = argv[++i];
        } else {
            fprintf(stderr, "cinemon-collector: token add: %s needs a value\n", a);
            return EXIT_USAGE;
        }
    }
    if (!!agent == !!oper || (agent && !site == !scope) || (oper && scope)) {
        fprintf(stderr, "cinemon-collector: token add needs --agent ID and --site CODE (or, "
                        "forwarding, --site '*' or --scope province:P|chain:C), or --operator "
                        "NAME [--site CODE]\n");
        return EXIT_USAGE;
    }
    char scope_site[CM_MAX_NAME + 1];
    if (scope) {
        if (forward_scope_arg(scope, scope_site, sizeof scope_site) != 0) return EXIT_USAGE;
        site = scope_site;
    } else if (agent && strcmp(site, "*") != 0 && strchr(site, ':')) {
        fprintf(stderr, "cinemon-collector: token add: a site code has no ':' (a forwarding "
                        "token takes --scope province:P or chain:C)\n");
        return EXIT_USAGE;
    }
    if (oper && !site) site = "*";
    if (!valid_ident(agent ? agent : oper) || !valid_ident(site)) {
        fprintf(stderr,
                "cinemon-collector: token add: names and site must be 1..%d "
                "printable bytes without spaces\n",
                CM_MAX_NAME);
        return EXIT_USAGE;
    }

    char err[512], where[256];
    co_store *store = open_store(cfg);
    if (!store) return EXIT_RUNTIME;
    co_config_store_desc(cfg, where, sizeof where);
    char token[CO_TOKEN_HEX_LEN + 1], hash[CO_HASH_HEX_LEN + 1];
    int rc = EXIT_RUNTIME;
    if (co_token_generate(token, err, sizeof err) != 0) {
        fprintf(stderr, "cinemon-collector: %s\n", err);
    } else if (co_token_hash(token, strlen(token), hash) != 0) {
        fprintf(stderr, "cinemon-collector: cannot hash the token\n");
    } else if ((agent ? co_store_token_add(store, hash, agent, site, err, sizeof err)
                      : co_store_operator_add(store, hash, oper, site, err, sizeof err)) != 0) {
        fprintf(stderr, "cinemon-collector: store %s: %s\n", where, err);
    } else {
        printf("%s\n", token);
        fflush(stdout);
        fprintf(stderr,
                "token for %s %s %s%s%s created; it is shown only now, "
                "the collector keeps its SHA-256\n",
                agent ? "agent" : "operator", agent ? agent : oper,
                agent && (scope || !strcmp(site, "*")) ? "forwarding " : "",
                strcmp(site, "*") ? (scope ? "within " : "at site ") : "at ",
                strcmp(site, "*") ? site : "every site");
        rc = 0;
    }
    memset(token, 0, sizeof token);
    co_store_close(store);
    return rc;
}

/* `import FILE.csv`: sites and screens, one transaction. */
static int cmd_import(const co_config *cfg, int argc, char **argv)
{
    if (argc != 1) {
        fprintf(stderr, "cinemon-collector: import needs exactly one CSV file\n");
        return EXIT_USAGE;
    }
    char err[512];
    co_store *store = open_store(cfg);
    if (!store) return EXIT_RUNTIME;
    size_t ns = 0, nc = 0;
    int rc = co_csv_import_file(store, argv[0], &ns, &nc, err, sizeof err);
    if (rc != 0)
        fprintf(stderr, "cinemon-collector: import: %s (nothing imported)\n", err);
    else
        printf("%s: %zu rows, %zu screens imported\n", argv[0], ns, nc);
    co_store_close(store);
    return rc ? EXIT_USAGE : 0;
}

/* --check-config: the rule files and the overrides load. */
static int check_rules(const co_config *cfg)
{
    if (!cfg->rules_enabled) return 0;
    char err[512];
    co_rules *r = co_rules_load_dir(cfg->rules_dir, err, sizeof err);
    if (!r) {
        fprintf(stderr,
                "cinemon-collector: rules: %s ([rules] dir in %s; `make install` puts "
                "the shipped rules in PREFIX/share/cinemon/rules)\n",
                err, cfg->path);
        return EXIT_USAGE;
    }
    int rc = 0;
    if (cfg->overrides_path) {
        co_overrides *o = co_overrides_load(r, cfg->overrides_path, err, sizeof err);
        if (!o) {
            fprintf(stderr, "cinemon-collector: rules: %s\n", err);
            rc = EXIT_USAGE;
        }
        co_overrides_free(o);
    }
    co_rules_free(r);
    return rc;
}

/* Run until SIGTERM or SIGINT; signals are taken synchronously by this thread. */
static int run(const co_config *cfg)
{
    char err[512], where[256];
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL); /* inherited by every thread started below */
    signal(SIGPIPE, SIG_IGN);
    cm_arena_json_install();

    co_store *store = NULL;
    co_writer *writer = NULL;
    co_metrics *metrics = NULL;
    co_ingest *ingest = NULL;
    co_query *query = NULL;
    co_http *http = NULL;
    co_access *access = NULL;
    co_alerting *alerting = NULL;
    co_retention *retention = NULL;
    co_forward *forward = NULL;
    int rc = EXIT_RUNTIME;

    co_config_store_desc(cfg, where, sizeof where); /* never the conninfo itself */
    if (co_config_open_store(cfg, &store, err, sizeof err) != 0) {
        cm_error("store %s: %s", where, err);
        goto out;
    }
    if (co_writer_start(&writer, store, WRITER_MAX_GROUP, err, sizeof err) != 0) {
        cm_error("writer: %s", err);
        goto out;
    }
    if (co_alerting_start(&alerting, store, cfg, err, sizeof err) != 0) {
        cm_error("rules: %s ([rules] dir in %s)", err, cfg->path);
        rc = EXIT_USAGE;
        goto out;
    }
    co_writer_set_hook(writer, co_alerting_judge, alerting);
    if (co_forward_start(&forward, &cfg->forward, store, CINEMON_VERSION, err, sizeof err) != 0) {
        cm_error("%s", err);
        goto out;
    }
    if (forward) co_writer_set_journal(writer, co_forward_prepare, co_forward_settle, forward);
    if (co_forward_summary(forward)) { /* alerts and compliance figures go up as they are stored */
        co_alerting_set_hook(alerting, co_forward_alerts, forward);
        co_compliance_set_hook(co_alerting_compliance(alerting), co_forward_compliance, forward);
    }
    size_t npaths;
    const char *const *paths = co_http_paths(&npaths);
    cm_wire_limits lim = {
        .max_depth = cfg->max_json_depth, .max_series = 100000, .max_points = 1000000};
    metrics = co_metrics_new(paths, npaths);
    ingest = metrics ? co_ingest_new(store, writer, metrics, &lim, 10000) : NULL;
    query = co_query_new(store);
    access = co_access_new(store, cfg, cfg->threads > 1 ? (unsigned)cfg->threads / 2 : 1);
    if (!metrics || !ingest || !query || !access) {
        cm_error("out of memory");
        goto out;
    }
    co_query_set_rules(query, co_alerting_rules(alerting));
    co_query_set_compliance(query, co_alerting_compliance(alerting));
    co_http_deps deps = {ingest, query, metrics, writer, store, access, forward};
    if (co_retention_start(&retention, store, &cfg->retention, err, sizeof err) != 0) {
        cm_error("%s", err);
        goto out;
    }
    if (co_http_start(&http, cfg, &deps, err, sizeof err) != 0) {
        cm_error("%s", err);
        goto out;
    }
    cm_info("cinemon-collector %s listening on %s (port %u), store %s, %d threads", CINEMON_VERSION,
            cfg->listen, co_http_port(http), where, cfg->threads);

    for (;;) {
        int sig = 0;
        if (sigwait(&set, &sig) != 0) continue;
        if (sig == SIGHUP) {
            cm_info("SIGHUP ignored (restart to reload the configuration)");
            continue;
        }
        cm_info("%s: finishing in-flight requests and stopping", strsignal(sig));
        break;
    }
    rc = 0;
out:
    co_http_stop(http, SHUTDOWN_GRACE_MS);
    if (writer) co_writer_stop(writer); /* drains: the last batches are judged too */
    /* no hook may call into the forwarder once it is stopped (alerting runs until below) */
    co_alerting_set_hook(alerting, NULL, NULL);
    co_compliance_set_hook(co_alerting_compliance(alerting), NULL, NULL);
    /* after the writer: no group in flight */
    co_forward_stop(forward, FORWARD_FLUSH_MS);
    co_alerting_stop(alerting, SHUTDOWN_GRACE_MS / 2);
    co_retention_stop(retention);
    co_ingest_free(ingest);
    co_query_free(query);
    co_access_free(access);
    co_metrics_free(metrics);
    if (store) co_store_close(store);
    if (rc == 0) cm_info("stopped");
    return rc;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"check-config", no_argument, NULL, 'C'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    const char *path = NULL;
    int check = 0, o;
    while ((o = getopt_long(argc, argv, "+c:h", opts, NULL)) != -1) {
        switch (o) {
        case 'c':
            path = optarg;
            break;
        case 'C':
            check = 1;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("cinemon-collector %s\n", CINEMON_VERSION);
            return 0;
        default:
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (!path) {
        fprintf(stderr, "cinemon-collector: -c FILE is required\n");
        usage(stderr);
        return EXIT_USAGE;
    }
    int token_cmd = optind < argc && strcmp(argv[optind], "token") == 0;
    int import_cmd = optind < argc && strcmp(argv[optind], "import") == 0;
    int viewer_cmd = optind < argc && strcmp(argv[optind], "viewer") == 0;
    if (optind < argc && !token_cmd && !import_cmd && !viewer_cmd) {
        fprintf(stderr, "cinemon-collector: unknown command '%s'\n", argv[optind]);
        usage(stderr);
        return EXIT_USAGE;
    }
    if ((token_cmd || import_cmd || viewer_cmd) && check) {
        fprintf(stderr, "cinemon-collector: --check-config takes no command\n");
        return EXIT_USAGE;
    }

    co_config cfg;
    char err[512];
    if (co_config_load(&cfg, path, err, sizeof err) != 0) {
        fprintf(stderr, "cinemon-collector: %s\n", err);
        co_config_free(&cfg);
        return EXIT_USAGE;
    }
    cm_log_init("cinemon-collector", cfg.log_level);
    int rc;
    if (check) {
        rc = check_rules(&cfg);
        char where[256];
        co_config_store_desc(&cfg, where, sizeof where);
        if (rc == 0)
            printf("%s: configuration OK (listen %s, store %s, rules %s, %zu webhooks, %zu "
                   "upstreams)\n",
                   path, cfg.listen, where, cfg.rules_enabled ? cfg.rules_dir : "off",
                   cfg.notify.ntargets, cfg.forward.n);
    } else if (token_cmd) {
        rc = cmd_token(&cfg, argc - optind - 1, argv + optind + 1);
    } else if (import_cmd) {
        rc = cmd_import(&cfg, argc - optind - 1, argv + optind + 1);
    } else if (viewer_cmd) {
        rc = co_viewer_cmd(&cfg, argc - optind - 1, argv + optind + 1, stdin, stdout, stderr);
    } else {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        rc = run(&cfg);
        curl_global_cleanup();
    }
    co_config_free(&cfg);
    return rc;
}
