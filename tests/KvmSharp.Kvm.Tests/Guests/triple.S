.code64
    /* The harness loads an IDT with limit 0: ud2 raises #UD, which cannot be delivered (#GP),
       nor can that (#DF): the CPU shuts down (triple fault). */
    ud2
