import{b as r}from"./chunk-4UH4BZIR.js";import"./chunk-STJRC6B2.js";import"./chunk-SNDVINHG.js";import"./chunk-L4DQWKC6.js";function t(){return r()}export{t as support};
