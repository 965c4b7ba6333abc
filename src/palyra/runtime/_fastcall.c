/*
 * The native half of the sandbox's call path (palyra.runtime.fastcall).
 *
 * Why C: from Python, every call crosses ctypes a dozen times (store, limits, fuel, deadline,
 * instantiate, exports, call, three I/O host callbacks, fuel, size, delete) and the
 * interpreter overhead around those crossings, not wasmtime, dominates a small tool call.
 * This file does the same steps in one native function and implements the three pure-I/O
 * host functions (input_len, input_read, output_write) natively. Everything with policy in it
 * (HTTP, secrets, storage, channels, logs) stays in Python. Stores are deleted inline: a
 * background deleter was measured 2.5x slower (concurrent munmap/mmap contend in the kernel).
 *
 * No wasmtime headers or link step: init() receives the addresses of the C API functions
 * from the library wasmtime-py already loaded (pinned to 50.0.1), and the few structs below
 * mirror that version's C API layout (as wasmtime-py's own _bindings do).
 *
 * Every guest pointer and length is treated as u32 and bounds-checked against the current
 * memory size before memory is touched, exactly like the Python host functions.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

typedef struct { uint64_t store_id; size_t priv; } instance_t;
typedef struct { uint64_t store_id; void *priv; } func_t;
typedef struct { struct { uint64_t store_id; uint32_t p1; } a; uint32_t p2; } memory_t;
typedef struct { uint8_t kind; union { func_t func; memory_t memory; uint8_t pad[32]; } of; } extern_t;
typedef union { int32_t i32; int64_t i64; uint8_t pad[16]; } valraw_t;

#define EXTERN_FUNC 0
#define EXTERN_MEMORY 3
#define CODE_INVALID (-2)
#define CODE_TOO_LARGE (-4)

static void *(*store_new)(void *, void *, void *);
static void *(*store_context)(void *);
static void (*store_delete)(void *);
static void (*store_limiter)(void *, int64_t, int64_t, int64_t, int64_t, int64_t);
static void *(*context_set_fuel)(void *, uint64_t);
static void *(*context_get_fuel)(void *, uint64_t *);
static void (*context_set_epoch_deadline)(void *, uint64_t);
static void *(*instance_pre_instantiate)(void *, void *, instance_t *, void **);
static int (*instance_export_get)(void *, instance_t *, const char *, size_t, extern_t *);
static void *(*func_call_unchecked)(void *, func_t *, valraw_t *, size_t, void **);
static uint8_t *(*memory_data)(void *, memory_t *);
static size_t (*memory_data_size)(void *, memory_t *);
static void *(*caller_context)(void *);
static void *(*context_get_data)(void *);
static int (*caller_export_get)(void *, const char *, size_t, extern_t *);

/* Per-call state, reachable from host functions through the store's data pointer. */
typedef struct {
    const char *input;
    size_t input_len;
    char *output;
    size_t output_len;
    size_t output_cap;
    size_t output_limit;
    int overflow;
    int has_memory;
    memory_t memory;
} call_state;

/* The memory is looked up lazily through the caller, so host calls made from a start
   function (before the call path could look it up) behave as on the ctypes path. */
static int in_memory(void *caller, void *cx, call_state *s, uint64_t ptr, uint64_t len,
                     uint8_t **base) {
    if (!s->has_memory) {
        extern_t item;
        if (!caller_export_get(caller, "memory", 6, &item) || item.kind != EXTERN_MEMORY)
            return 0;
        s->memory = item.of.memory;
        s->has_memory = 1;
    }
    size_t size = memory_data_size(cx, &s->memory);
    if (ptr + len > size) return 0;
    *base = memory_data(cx, &s->memory);
    return 1;
}

static void *host_input_len(void *env, void *caller, valraw_t *values, size_t n) {
    (void)env; (void)n;
    call_state *s = context_get_data(caller_context(caller));
    if (s == NULL) return NULL; /* unreachable: only native stores reach native functions */
    values[0].i32 = (int32_t)s->input_len;
    return NULL;
}

static void *host_input_read(void *env, void *caller, valraw_t *values, size_t n) {
    (void)env; (void)n;
    void *cx = caller_context(caller);
    call_state *s = context_get_data(cx);
    if (s == NULL) { values[0].i32 = CODE_INVALID; return NULL; }
    uint64_t ptr = (uint32_t)values[0].i32, len = (uint32_t)values[1].i32;
    uint8_t *base;
    if (!in_memory(caller, cx, s, ptr, len, &base)) { values[0].i32 = CODE_INVALID; return NULL; }
    size_t copy = len < s->input_len ? (size_t)len : s->input_len;
    if (copy) memcpy(base + ptr, s->input, copy);
    values[0].i32 = (int32_t)copy;
    return NULL;
}

static void *host_output_write(void *env, void *caller, valraw_t *values, size_t n) {
    (void)env; (void)n;
    void *cx = caller_context(caller);
    call_state *s = context_get_data(cx);
    if (s == NULL) { values[0].i32 = CODE_INVALID; return NULL; }
    uint64_t ptr = (uint32_t)values[0].i32, len = (uint32_t)values[1].i32;
    if ((uint64_t)s->output_len + len > s->output_limit) {
        s->overflow = 1;
        values[0].i32 = CODE_TOO_LARGE;
        return NULL;
    }
    uint8_t *base;
    if (!in_memory(caller, cx, s, ptr, len, &base)) { values[0].i32 = CODE_INVALID; return NULL; }
    if (s->output_len + len > s->output_cap) {
        size_t cap = s->output_cap ? s->output_cap : 256;
        while (cap < s->output_len + len) cap *= 2;
        if (cap > s->output_limit) cap = s->output_limit;
        char *grown = PyMem_RawRealloc(s->output, cap);
        if (!grown) { values[0].i32 = CODE_TOO_LARGE; s->overflow = 1; return NULL; }
        s->output = grown;
        s->output_cap = cap;
    }
    if (len) memcpy(s->output + s->output_len, base + ptr, (size_t)len);
    s->output_len += (size_t)len;
    values[0].i32 = (int32_t)s->output_len;
    return NULL;
}

/* ---- Python API ------------------------------------------------------------------------- */

static PyObject *fast_init(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *addresses;
    if (!PyArg_ParseTuple(args, "O!", &PyTuple_Type, &addresses)) return NULL;
    void **slots[] = {
        (void **)&store_new, (void **)&store_context, (void **)&store_delete,
        (void **)&store_limiter, (void **)&context_set_fuel, (void **)&context_get_fuel,
        (void **)&context_set_epoch_deadline, (void **)&instance_pre_instantiate,
        (void **)&instance_export_get, (void **)&func_call_unchecked, (void **)&memory_data,
        (void **)&memory_data_size, (void **)&caller_context, (void **)&context_get_data,
        (void **)&caller_export_get,
    };
    Py_ssize_t count = (Py_ssize_t)(sizeof slots / sizeof slots[0]);
    if (PyTuple_GET_SIZE(addresses) != count) {
        PyErr_Format(PyExc_ValueError, "expected %zd function addresses", count);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        void *address = PyLong_AsVoidPtr(PyTuple_GET_ITEM(addresses, i));
        if (address == NULL) {
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "NULL function address");
            return NULL;
        }
        *slots[i] = address;
    }
    return Py_BuildValue(
        "(KKK)", (unsigned long long)(uintptr_t)host_input_len,
        (unsigned long long)(uintptr_t)host_input_read,
        (unsigned long long)(uintptr_t)host_output_write);
}

/*
 * call(engine, pre, export, input, output_limit, memory_bytes, table_elements, instances,
 *      tables, memories, fuel, deadline_ticks)
 * -> (stage, exit_code, output, overflow, fuel_left, memory_size, error, trap, store)
 * stage: 0 success, 1 failed while instantiating, 2 failed while calling, 3 missing export.
 * On failure the store is returned (not deleted) so the caller can read the error first and
 * then delete it with delete_store().
 */
static PyObject *fast_call(PyObject *self, PyObject *args) {
    (void)self;
    unsigned long long engine, pre, fuel, deadline, output_limit;
    long long memory_bytes, table_elements, instances, tables, memories;
    const char *export_name, *input;
    Py_ssize_t export_len, input_len;
    if (!PyArg_ParseTuple(args, "KKy#y#KLLLLLKK", &engine, &pre, &export_name, &export_len,
                          &input, &input_len, &output_limit, &memory_bytes, &table_elements,
                          &instances, &tables, &memories, &fuel, &deadline))
        return NULL;
    call_state state = {0};
    state.input = input;
    state.input_len = (size_t)input_len;
    /* Results are i32: the output length must stay representable. */
    state.output_limit = output_limit > INT32_MAX ? (size_t)INT32_MAX : (size_t)output_limit;

    void *store = store_new((void *)(uintptr_t)engine, &state, NULL);
    void *cx = store_context(store);
    store_limiter(store, memory_bytes, table_elements, instances, tables, memories);
    void *error = context_set_fuel(cx, fuel);
    if (error) {
        store_delete(store);
        PyErr_SetString(PyExc_RuntimeError, "fuel is not enabled on this engine");
        return NULL;
    }
    context_set_epoch_deadline(cx, deadline);

    int stage = 0, exit_code = 0;
    void *trap = NULL;
    instance_t instance;
    extern_t item;
    Py_BEGIN_ALLOW_THREADS
    error = instance_pre_instantiate((void *)(uintptr_t)pre, cx, &instance, &trap);
    Py_END_ALLOW_THREADS
    if (error || trap) {
        stage = 1;
    } else {
        if (instance_export_get(cx, &instance, "memory", 6, &item) && item.kind == EXTERN_MEMORY) {
            state.memory = item.of.memory;
            state.has_memory = 1;
        }
        if (!instance_export_get(cx, &instance, export_name, (size_t)export_len, &item) ||
            item.kind != EXTERN_FUNC) {
            stage = 3;
        } else {
            func_t func = item.of.func;
            valraw_t values[1];
            memset(values, 0, sizeof values);
            /* Released so the epoch ticker (a Python thread) keeps running; Python host
               functions take the GIL back through their ctypes thunks. */
            Py_BEGIN_ALLOW_THREADS
            error = func_call_unchecked(cx, &func, values, 1, &trap);
            Py_END_ALLOW_THREADS
            if (error || trap) stage = 2;
            else exit_code = values[0].i32;
        }
    }
    uint64_t fuel_left = 0;
    context_get_fuel(cx, &fuel_left);
    size_t memory_size = state.has_memory ? memory_data_size(cx, &state.memory) : 0;
    PyObject *output = PyBytes_FromStringAndSize(state.output ? state.output : "", (Py_ssize_t)state.output_len);
    PyMem_RawFree(state.output);
    if (output == NULL) {
        store_delete(store);
        return NULL;
    }
    if (stage == 0) {
        store_delete(store);
        store = NULL;
    }
    return Py_BuildValue(
        "(iiNiKnKKK)", stage, exit_code, output, state.overflow, (unsigned long long)fuel_left,
        (Py_ssize_t)memory_size, (unsigned long long)(uintptr_t)error,
        (unsigned long long)(uintptr_t)trap, (unsigned long long)(uintptr_t)store);
}

static PyObject *fast_delete_store(PyObject *self, PyObject *args) {
    (void)self;
    unsigned long long store;
    if (!PyArg_ParseTuple(args, "K", &store)) return NULL;
    if (store) store_delete((void *)(uintptr_t)store);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"init", fast_init, METH_VARARGS, "Bind the wasmtime C API; returns host function addresses."},
    {"call", fast_call, METH_VARARGS, "Run one call in a fresh store."},
    {"delete_store", fast_delete_store, METH_VARARGS, "Delete a store returned by a failed call."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_fastcall", NULL, -1, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__fastcall(void) { return PyModule_Create(&module); }
