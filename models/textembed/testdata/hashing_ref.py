"""Independent reference for textembed's hashing encoder (default n-gram
settings, CharWeight 1). Run: python3 hashing_ref.py — prints the golden
vectors that hashing_test.go pins."""
import math, re, unicodedata
def fnv(b):
    h=14695981039346656037
    for x in b: h=((h^x)*1099511628211)&(2**64-1)
    return h
def toks(t):
    out=[];cur=''
    # Per-character lowercasing, as Go's strings.ToLower (no final-sigma rule).
    for ch in ''.join(c.lower() for c in t):
        c=unicodedata.category(ch)
        if c[0]=='L' or c=='Nd' or c=='Mn': cur+=ch
        else:
            if cur: out.append(cur)
            cur=''
    if cur: out.append(cur)
    return out
def block(feats,d):
    tf={}
    for f in feats: tf[f]=tf.get(f,0)+1
    v=[0.0]*d
    for f,n in tf.items():
        w=1+math.log(n)
        if f>>63: w=-w
        v[f%d]+=w
    return v
def enc(t,d=16):
    w=toks(t)
    wf=[fnv(bytes([ord('w'),n])+' '.join(w[i:i+n]).encode()) for n in (1,2) for i in range(len(w)-n+1)]
    cf=[]
    for x in w:
        r=' '+x+' '
        for n in range(3,6):
            for i in range(len(r)-n+1): cf.append(fnv(bytes([ord('c'),n])+r[i:i+n].encode()))
    a,b=block(wf,d),block(cf,d)
    na,nb=math.sqrt(sum(x*x for x in a)),math.sqrt(sum(x*x for x in b))
    s=[(x/na if na else 0)+(y/nb if nb else 0) for x,y in zip(a,b)]
    n=math.sqrt(sum(x*x for x in s))
    return [x/n for x in s]
if __name__ == "__main__":
    # The golden vectors pinned in hashing_test.go.
    print(enc("Send an email to Bob", 16))
    print(enc("Café CAFÉ café au lait — naïve Straße, ΣΊΣΥΦΟΣ 42!", 32))
