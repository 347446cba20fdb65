#version 330
// Depth only: the brow layer's face (render.brow_layer), drawn with colour writes off.
void main() {
}
