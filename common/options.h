#pragma once
/*
 * Options declared once. Every module that reads options from the config file declares them
 * in one table of struct option_def, a group: name, type, default, bounds, whether it may
 * change on reload, a description, and where the value lives in the module's own options
 * struct (offset and C type checked at compile time). The program lists the groups it reads
 * in an option_table, each bound to the place of the group's struct in one block of values,
 * and the config loader, `--help-config` and the generated reference config all walk that
 * table, so they cannot disagree.
 *
 *   module:   struct grpc_server_options { char bind[256]; uint32_t port; ... };
 *             const struct option_group grpc_option_group = {"server", grpc_option_defs, n};
 *   program:  struct daemon_options { struct grpc_server_options grpc; ... };
 *             const struct option_table daemon_option_table = {sections, bindings, ...};
 *   loader:   YAML `server: { grpc_port: 7000 }` -> option_set(def, block + offset, "7000")
 *
 * Values are plain fields (strings in fixed arrays), so an options struct needs no freeing
 * and copies with `=`.
 *
 * Text forms (the same for defaults, the config file and the reference config):
 *   bool      true | false
 *   uint      decimal digits, no sign
 *   duration  0, 500ms, 30s, 5m, 24h, 7d, or bare digits meaning seconds
 *   size      4MiB, 512KiB, 1GiB, 100B, or bare digits meaning bytes
 *   string    any scalar, of a length within the bounds
 *   enum      one of the listed words
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---- declaring options --------------------------------------------------------------------- */

enum option_type {
    OPTION_BOOL,     /* bool */
    OPTION_UINT,     /* uint32_t */
    OPTION_DURATION, /* int64_t, microseconds */
    OPTION_SIZE,     /* uint64_t, bytes */
    OPTION_STRING,   /* char[N], NUL-terminated; the bounds' max must be below N */
    OPTION_ENUM,     /* int, the index of the word in `choices` */
};

#define OPTION_RELOADABLE   (1u << 0) /* may change on SIGHUP without a restart */
#define OPTION_POWER_OF_TWO (1u << 1) /* uint only */

struct option_def {
    const char *name;
    enum option_type type;
    const char *default_text; /* in the text form above; parsed exactly like a config value */
    /* Inclusive bounds: uint and size in their unit, duration in microseconds, string in bytes
     * of length. Unused for bool and enum. */
    uint64_t min, max;
    const char *const *choices; /* enum only: NULL-terminated */
    uint32_t flags;
    size_t offset; /* of the value in the group's struct: set with OPTION_AT() */
    size_t size;   /* of the value there */
    const char *description;
};

/*
 * `.offset` and `.size` of member `m` of struct type `T`, whose C type must be `ctype`: a row
 * whose type does not match the struct's field fails to compile (no _Generic association
 * matches). A char array member matches char * (arrays decay).
 */
#define OPTION_AT(T, m, ctype)                                                                     \
    .offset = _Generic(((T *)0)->m, ctype : offsetof(T, m)), .size = sizeof(((T *)0)->m)
#define OPTION_BOOL_AT(T, m)     OPTION_AT(T, m, bool)
#define OPTION_UINT_AT(T, m)     OPTION_AT(T, m, uint32_t)
#define OPTION_DURATION_AT(T, m) OPTION_AT(T, m, int64_t)
#define OPTION_SIZE_AT(T, m)     OPTION_AT(T, m, uint64_t)
#define OPTION_STRING_AT(T, m)   OPTION_AT(T, m, char *)
#define OPTION_ENUM_AT(T, m)     OPTION_AT(T, m, int)

/*
 * One module's options: some keys of one section of the config file. A module's options
 * struct may hold more than its options (values the program sets, fixed defaults): `init`
 * (may be NULL) gives those their defaults before the options get theirs.
 */
struct option_group {
    const char *section; /* "server", "store", "materializer" */
    const struct option_def *defs;
    size_t ndefs;
    void (*init)(void *values);
};

/* ---- a program's options ------------------------------------------------------------------- */

struct option_section {
    const char *name;
    const char *description;
};

/* A group, and where its struct lives in the program's block of values. */
struct option_binding {
    const struct option_group *group;
    size_t offset;
    size_t size; /* of the group's struct */
};

/* A binding of `group` to member `m` of block struct `T`. */
#define OPTION_BIND(group, T, m)                                                                   \
    { &(group), offsetof(T, m), sizeof(((T *)0)->m) }

/*
 * Every option a program reads: its sections, in the order the docs list them, and its
 * groups, in the order each section lists their keys; `block_size` is the size of the struct
 * that holds every group's struct.
 */
struct option_table {
    const struct option_section *sections;
    size_t nsections;
    const struct option_binding *bindings;
    size_t nbindings;
    size_t block_size;
};

/*
 * Sections nest: "server.auth" is the mapping under key `auth` of section "server", listed
 * after its parent. Returns the key `section` has in `parent` ("auth"), or, with parent NULL,
 * `section` itself when it is a top-level one; NULL when it is neither.
 */
const char *option_section_child(const char *section, const char *parent);

/* The section named `name`, or NULL. */
const struct option_section *option_table_section(const struct option_table *table,
                                                  const char *name);

/* The option `section.name`, or NULL; *offset (may be NULL) gets its group's offset in the
 * block. */
const struct option_def *option_table_find(const struct option_table *table, const char *section,
                                           const char *name, size_t *offset);

/*
 * The options of section `name` in table order (the groups that make it up, one after
 * another) into `out`, room for `max`; returns how many. OPTION_SECTION_MAX is always enough.
 */
#define OPTION_SECTION_MAX 256
size_t option_table_section_defs(const struct option_table *table, const char *name,
                                 const struct option_def **out, size_t max);

/* ---- values -------------------------------------------------------------------------------- */

/* Sets every option of the table in `block` (block_size bytes) to its default. -1 with `err`
 * set only when a default does not parse, which the tests of each table rule out. */
int option_table_defaults(const struct option_table *table, void *block, char *err, size_t err_len);

/* Zeroes `values` (the group's struct, `size` bytes), runs the group's init and sets every
 * option to its default. */
int option_group_defaults(const struct option_group *group, void *values, size_t size, char *err,
                          size_t err_len);

/*
 * Parses `text` as option `def` and stores it in `values` (the struct of def's group). On
 * error returns -1, leaves the old value in place, and writes a message that quotes `text`
 * and the expected form or bounds (but not the option's name: the caller knows it).
 */
int option_set(const struct option_def *def, void *values, const char *text, char *err,
               size_t err_len);

/* Writes the value of `def` in `values` in its text form (as the config file would spell it). */
void option_format(const struct option_def *def, const void *values, char *buf, size_t buf_len);

/*
 * For a reload: returns 0 when block `next` differs from `current` only in reloadable
 * options, else -1 with `err` naming every option that would need a restart
 * ("server.grpc_port: 6566 -> 7000 (needs a restart); ...").
 */
int option_reload_check(const struct option_table *table, const void *current, const void *next,
                        char *err, size_t err_len);

/* ---- text forms shared with the config loader --------------------------------------------- */

/* Parse a duration/size text form; -1 with `err` set on bad syntax or overflow. */
int option_parse_duration(const char *text, int64_t *us, char *err, size_t err_len);
int option_parse_size(const char *text, uint64_t *bytes, char *err, size_t err_len);
/* The shortest exact text form: 0, 500ms, 90s, 24h, 7d, 4MiB, 1000B... */
void option_format_duration(int64_t us, char *buf, size_t buf_len);
void option_format_size(uint64_t bytes, char *buf, size_t buf_len);

/* ---- documentation ------------------------------------------------------------------------- */

/* `--help-config`: every option with type, default, bounds, reloadable and description. */
void option_print_help(const struct option_table *table, FILE *out);

/* The sections part of a reference config: every option set to its default, commented. */
void option_print_reference(const struct option_table *table, FILE *out);
