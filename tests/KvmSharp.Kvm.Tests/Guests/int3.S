.code64
    int3
    hlt
