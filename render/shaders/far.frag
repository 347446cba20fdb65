#version 330
// The brow layer's first pass (render.brow_layer): the brows' own pixels get the far depth, so
// that only the face's skin drawn next can hide them there.
void main() {
    gl_FragDepth = 1.0;
}
